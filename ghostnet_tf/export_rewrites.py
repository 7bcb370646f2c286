"""Exact rewrites of a model's graph for LiteRT, made on the copy that export converts.

The user's model is not touched: `tflite_graph(model)` returns a new functional model that
reuses its layers (and so its weights) and computes the same function up to float rounding,
with an RGB input for grayscale models and these rewrites, each kept because it measured
faster in LiteRT (XNNPACK; docs/benchmarks.md has the before/after rows):

- "fold_input_normalization": the per-channel scale of the input normalization moves into
  the first convolution's kernel (exact: scaling does not change zero padding); what is
  left is the shift, added on a wide (height, width x channels) view of the image, where
  XNNPACK adds a row vector instead of broadcasting over an innermost axis of 3. For a
  grayscale model with RGB input, the RGB-to-gray weights move into the kernel too.
- "duplicate_ghost_modules": Ghost modules on maps of at least DUPLICATE_MIN_PIXELS pixels
  compute in `GhostModule.duplicate_form`, without their concatenation.
"""
import numpy as np

from ghostnet_tf.checks import ArgumentError
from ghostnet_tf.compat import sublayers

REWRITES = ("fold_input_normalization", "duplicate_ghost_modules")
# Measured with benchmarks/tflite_latency.py (GhostNet 1.0x, float32 and int8): from 56x56
# maps up the duplicate form is faster than the concatenation; from 28x28 down it is slower
# (docs/benchmarks.md).
DUPLICATE_MIN_PIXELS = 56 * 56
# ITU-R BT.601 luma weights, as tf.image.rgb_to_grayscale and PIL's "L" mode; their sum is
# exactly 1, so a gray image given as R = G = B keeps its values.
RGB_TO_GRAY = (0.299, 0.587, 0.114)


def check_rewrites(rewrites):
    unknown = [name for name in rewrites if name not in REWRITES]
    if unknown:
        raise ArgumentError("rewrites", f"has unknown {', '.join(unknown)}; expected some of "
                                        f"{', '.join(REWRITES)}.")


def tflite_graph(model, rewrites=REWRITES):
    """The model that export converts to TFLite: RGB input, with `rewrites` applied.

    `model` is the functional float32 copy that export makes (`export.inference_copy`): the
    returned model shares its layers, and its Ghost modules are set to use the duplicate form
    or not.
    """
    import keras

    check_rewrites(rewrites)
    channels = model.input_shape[-1]
    if channels not in (1, 3):
        raise ArgumentError("model", f"{model.name} takes {channels} channels; TFLite export "
                                     "takes RGB (3) or grayscale (1) models.")
    for module in sublayers(model, recursive=True):
        if hasattr(module, "duplicate_form_min_pixels"):
            module.duplicate_form_min_pixels = (
                DUPLICATE_MIN_PIXELS if "duplicate_ghost_modules" in rewrites else None)
    front = _input_front(model) if "fold_input_normalization" in rewrites else None
    if front is not None and front[0] is None and channels == 3:
        front = None  # no normalization to fold
    if front is None and channels == 3:
        return model
    rgb = keras.Input(model.input_shape[1:3] + (3,), name="image")
    call = _folding_call(*front, channels) if front else _gray_call(rgb)
    graph = keras.models.clone_model(model, input_tensors=rgb,
                                     clone_function=lambda layer: layer, call_function=call)
    return keras.Model(graph.inputs[0], graph.outputs[0], name=model.name)


def _input_front(model):
    """(Rescaling or None, Conv2D) when the model starts with an optional Rescaling, optional
    ZeroPadding2D and a Conv2D, each used by the next only; else None."""
    from keras import layers

    consumers = {}
    for operation in model.operations:
        for node in operation._inbound_nodes:
            for tensor in node.input_tensors:
                consumers.setdefault(id(tensor), []).append(operation)
    tensor, rescaling = model.inputs[0], None
    while True:
        following = consumers.get(id(tensor), [])
        if len(following) != 1:
            return None
        layer = following[0]
        if isinstance(layer, layers.Conv2D):
            usable = layer.groups == 1 and tuple(layer.dilation_rate) == (1, 1)
            return (rescaling, layer) if usable else None
        if isinstance(layer, layers.Rescaling) and rescaling is None:
            rescaling = layer
        elif not isinstance(layer, layers.ZeroPadding2D):
            return None
        tensor = layer.output


def _gray_call(rgb):
    """Calls that give a grayscale model the gray image of the RGB input `rgb`."""
    from keras import ops

    weights = np.asarray(RGB_TO_GRAY, "float32")

    def call(layer, *args, **kwargs):
        if args and args[0] is rgb:
            args = (ops.sum(args[0] * weights, axis=-1, keepdims=True),) + args[1:]
        return layer(*args, **kwargs)

    return call


def _folding_call(rescaling, conv, channels):
    """Calls that replace the input normalization (`rescaling`, or None) and the first
    convolution `conv` by the shift of the RGB image and the folded convolution."""
    from keras import ops

    def per_channel(value):
        return np.broadcast_to(np.asarray(value, "float32"), (channels,))

    scale = per_channel(rescaling.scale if rescaling else 1.0)
    offset = per_channel(rescaling.offset if rescaling else 0.0)
    if np.any(scale == 0):
        raise ArgumentError("model", f"{rescaling.name} scales a channel by 0; its input "
                                     "normalization cannot be folded.")
    # scale * (x . M) + offset == (x + shift) . (M * scale) with shift = offset / scale, for
    # M the identity, or RGB_TO_GRAY (summing to 1) with one shift for R, G and B.
    shift = offset / scale
    if channels == 1:
        mixing = np.asarray(RGB_TO_GRAY, "float32")[:, None] * scale[None, :]
        shift = np.full(3, shift[0], "float32")
    else:
        mixing = np.diag(scale)

    def shifted(x):
        if not np.any(shift):
            return x
        if np.all(shift == shift[0]):
            return x + float(shift[0])
        height, width = x.shape[1], x.shape[2]
        wide = ops.reshape(x, (-1, height, width * 3)) + np.tile(shift, width)
        return ops.reshape(wide, (-1, height, width, 3))

    def folded_conv(x):
        kernel = ops.einsum("hwio,ci->hwco", conv.kernel, mixing)
        x = ops.conv(x, kernel, strides=conv.strides, padding=conv.padding)
        return conv.activation(x + conv.bias if conv.use_bias else x)

    def call(layer, *args, **kwargs):
        if layer is rescaling:
            return shifted(args[0])
        if layer is conv:
            return folded_conv(shifted(args[0]) if rescaling is None else args[0])
        return layer(*args, **kwargs)

    return call
