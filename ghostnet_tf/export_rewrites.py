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
  compute `concat(y, dw(y))` as `dw'([y, y])`, without their concatenation
  (`ExportGhostModule.duplicate_form_maps`).
- "dfc_pool_as_depthwise": the 2x2 average pool of GhostNetV2's DFC attention is a 2x2
  depthwise convolution of stride 2 with weights 1/4 (exact in float: the same sum of four
  quarters; 1/4 is also exact in int8, as 127 steps of a per-channel scale of 1/508):
  XNNPACK has no int8 average pool, so each int8 pool split the graph into another
  delegated partition and ran in TFLite's reference kernel (10% of GhostNetV3's int8 time).
- "clip_gate_as_relu6": PaddleClas's squeeze-excite gate `clip(x, 0, 1)` as
  `relu6(6 x) / 6` with the 6 in the expanding convolution's kernel and bias (float
  rounding apart, the same function). The clip converts to RELU and MINIMUM, and XNNPACK has
  no int8 MINIMUM: PaddleClas's int8 GhostNet 1.3x ran in 8 delegated partitions, 1 with
  this, and 0.96-0.99x the time (benchmarks/rewrite_latency.py, docs/benchmarks.md).

The ONNX copy (`onnx_graph`) has its own rewrites, ONNX_REWRITES, made so that tf2onnx's
transpose optimizer can move the whole network to NCHW (without them it gives up and leaves
a pair of layout Transposes around every convolution, which OpenVINO, MNN and ncnn pay for):

- "se_gate_in_bias": the squeeze-excite gate `relu6(conv(x) + b + 3) / 6` with the 3 added to
  the convolution's bias (float rounding apart, the same sum). The optimizer fails on a
  scalar added to a convolution's output (tf2onnx 1.17, `_add_handler`: `max()` of an empty
  shape) and then moves no Transpose anywhere in the graph.
- "dfc_upsample_as_resize": the DFC gate's nearest upsampling as a resize op by 2 with
  PyTorch's index rule, source floor(i * in / out) (TensorFlow's legacy ResizeNearestNeighbor,
  ONNX's Resize "asymmetric"/"floor"; odd sizes repeat the first row), instead of the rank-5 reshapes around a concatenation
  that the LiteRT graph uses and the optimizer cannot move a Transpose through.

The rewritten layers are subclasses of the library's, made here for the converted copy
only: the library's layers each compute one function and hold no export state.
"""
import numpy as np
from keras import ops

from ghostnet_tf.checks import ArgumentError
from ghostnet_tf.compat import consumers
from ghostnet_tf.layers import GhostBottleneck, GhostModule, RepConv, SqueezeExcite
from ghostnet_tf.models.reparameterize import folded_kernel_and_bias
from ghostnet_tf.models.transfer import clone_with_weights

REWRITES = ("fold_input_normalization", "duplicate_ghost_modules", "dfc_pool_as_depthwise",
            "clip_gate_as_relu6")
ONNX_REWRITES = ("se_gate_in_bias", "dfc_upsample_as_resize")
# The rewrites made by copying Ghost modules and bottlenecks as `ExportGhostModule`s.
MODULE_REWRITES = ("duplicate_ghost_modules", "dfc_pool_as_depthwise",
                   "clip_gate_as_relu6") + ONNX_REWRITES
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

    `model` is the functional float32 copy that export makes (`export.inference_copy`). The
    returned model shares its layers, but for the Ghost modules and bottlenecks that the
    duplicate form replaces (copies, with their weights).
    """
    import keras

    check_rewrites(rewrites)
    channels = model.input_shape[-1]
    if channels not in (1, 3):
        raise ArgumentError("model", f"{model.name} takes {channels} channels; TFLite export "
                                     "takes RGB (3) or grayscale (1) models.")
    front = _input_front(model) if "fold_input_normalization" in rewrites else None
    if front is not None and front[0] is None and channels == 3:
        front = None  # no normalization to fold
    module_rewrites = tuple(name for name in rewrites if name in MODULE_REWRITES)
    if front is None and channels == 3 and not module_rewrites:
        return model
    rgb = keras.Input(model.input_shape[1:3] + (3,), name="image")
    if front:
        call = _folding_call(*front, channels)
    else:
        call = _gray_call(rgb) if channels == 1 else None
    graph = clone_with_weights(
        model, lambda layer: _export_layer(layer, module_rewrites),
        call_function=call, recursive=True, input_tensors=rgb)
    return keras.Model(graph.inputs[0], graph.outputs[0], name=model.name)


def onnx_graph(model, layout="nhwc"):
    """The model that export converts to ONNX: `model` (the inference copy) taking "nhwc" or
    "nchw" images (`layout`), with ONNX_REWRITES, sharing its layers but for the Ghost
    modules and bottlenecks. Its input normalization (`leading_rescaling`) runs on NCHW
    maps: on NHWC, with an innermost axis of 3 to broadcast over, ONNX Runtime's profiler
    gave it 2.4 ms of GhostNet 1.0x's time (0.6 ms for all its Muls and Adds after the
    change), and the default NHWC file ran 1.1x the time of PyTorch's export."""
    import keras

    height, width, channels = model.input_shape[1:]
    rescaling = leading_rescaling(model)
    images = keras.Input((height, width, channels) if layout == "nhwc"
                         else (channels, height, width), name="images")
    x = ops.transpose(images, (0, 3, 1, 2)) if layout == "nhwc" else images
    if rescaling is not None:
        scale, offset = (per_channel(value, channels).astype("float32")[:, None, None]
                         for value in (rescaling.scale, rescaling.offset))
        x = x * scale + offset

    def call(layer, *args, **kwargs):
        return args[0] if layer is rescaling else layer(*args, **kwargs)

    graph = clone_with_weights(model, lambda layer: _export_layer(layer, ONNX_REWRITES),
                               call_function=call, recursive=True)
    # tf2onnx's optimizer cancels the Transpose back to NHWC with the first convolution's.
    return keras.Model(images, graph(ops.transpose(x, (0, 2, 3, 1))), name=model.name)


def per_channel(value, channels):
    """A Rescaling's scale or offset (a number or one per channel) as one float64 value per
    channel."""
    return np.broadcast_to(np.asarray(value, "float64"), (channels,))


def leading_rescaling(model):
    """The Rescaling that normalizes `model`'s input (the first layer the input feeds, when
    it is the input's only user), or None."""
    from keras import layers

    users = consumers(model).get(id(model.inputs[0]), [])
    if len(users) == 1 and isinstance(users[0], layers.Rescaling):
        return users[0]
    return None


# ------------------------------------------------------------- the module rewrites
class ExportGhostModule(GhostModule):
    """A `GhostModule` computed with the module rewrites named in `rewrites` (set on the
    copy before it is built): the duplicate form of its maps, the DFC pool as a depthwise
    convolution. For the converted copy only; never saved."""

    rewrites = ()

    def can_use_duplicate_form(self):
        """Whether the duplicate form computes exactly this module: ratio 2 with no channel
        cut (one ghost map per intrinsic map, in order) and an activation that is the
        identity on its own outputs (ReLU or none), which the copied half passes through
        twice."""
        return (self.ratio == 2 and 2 * self.primary_filters == self.filters
                and self.activation in (True, False, None, "relu", "linear"))

    def duplicate_form_maps(self, inputs):
        """The maps at inference without their concatenation: batch norms folded, the
        primary convolution emits its maps twice, and one depthwise convolution copies the
        first half (a centre tap of 1) and makes the ghost maps from the second half. The
        same function up to float rounding, traced from the variables, which the TFLite
        converter folds into constants."""
        kernel, bias = folded_kernel_and_bias(self.primary_conv, self.primary_bn)
        padding = self.padding
        if isinstance(self.primary_conv, RepConv):
            inputs, padding = self.primary_conv.padded(inputs), self.primary_conv.keras_padding()
        intrinsic = ops.conv(inputs, ops.concatenate([kernel, kernel], axis=-1),
                             strides=self.strides, padding=padding)
        intrinsic = self._activation_fn(intrinsic + ops.concatenate([bias, bias]))
        cheap_kernel, cheap_bias = folded_kernel_and_bias(self.cheap_conv, self.cheap_bn)
        size = self.dw_size
        identity = np.zeros((size, size, self.primary_filters, 1), "float32")
        identity[size // 2, size // 2] = 1.0
        kernel = ops.concatenate([ops.cast(identity, cheap_kernel.dtype), cheap_kernel], axis=2)
        bias = ops.concatenate([ops.zeros_like(cheap_bias), cheap_bias])
        return self._activation_fn(ops.depthwise_conv(intrinsic, kernel, padding="same") + bias)

    def maps(self, inputs, training=None):
        height, width = inputs.shape[1], inputs.shape[2]
        if ("duplicate_ghost_modules" not in self.rewrites or training or height is None
                or width is None or height * width < DUPLICATE_MIN_PIXELS
                or not self.can_use_duplicate_form()):
            return super().maps(inputs, training)
        return self.duplicate_form_maps(inputs)

    def dfc_pool(self, inputs):
        if "dfc_pool_as_depthwise" not in self.rewrites:
            return super().dfc_pool(inputs)
        quarters = np.full((2, 2, inputs.shape[-1], 1), 0.25, "float32")
        return ops.depthwise_conv(inputs, ops.cast(quarters, inputs.dtype), strides=2,
                                  padding="valid")

    def upsample(self, gate, height, width):
        """From the 2x2 floor pool the output is twice the gate's size, plus one for odd
        sizes: a resize by exactly 2, then the first row (column) once more in front, as
        PyTorch's rule picks it (rows 0, 0, 0, 1, 1, 2, 2 for 3 -> 7). An exact factor of 2
        because tf2onnx writes the resize as a float scale, and 7 / 3 in float32 times 3
        floors to 6 rows in ONNX Runtime."""
        rows, columns = gate.shape[1], gate.shape[2]
        if ("dfc_upsample_as_resize" not in self.rewrites or rows is None or columns is None
                or height - 2 * rows not in (0, 1) or width - 2 * columns not in (0, 1)):
            return super().upsample(gate, height, width)
        import tensorflow as tf  # the ONNX export converts TensorFlow graphs

        x = tf.compat.v1.image.resize_nearest_neighbor(
            gate, (2 * rows, 2 * columns), align_corners=False, half_pixel_centers=False)
        if height > 2 * rows:
            x = ops.concatenate([x[:, :1], x], axis=1)
        if width > 2 * columns:
            x = ops.concatenate([x[:, :, :1], x], axis=2)
        return x


class ExportSqueezeExcite(SqueezeExcite):
    """A `SqueezeExcite` computed with the rewrites named in `rewrites`: the hard sigmoid's 3
    in the expanding convolution's bias, or the clip gate as relu6(6 x) / 6 with the 6 in its
    kernel and bias. For the converted copy only; never saved."""

    rewrites = ()

    def gate(self, reduced):
        conv = self.conv_expand
        if "se_gate_in_bias" in self.rewrites and self.gate_function == "hard_sigmoid":
            return ops.relu6(ops.conv(reduced, conv.kernel) + (conv.bias + 3.0)) / 6.0
        if "clip_gate_as_relu6" in self.rewrites and self.gate_function == "clip":
            return ops.relu6(ops.conv(reduced, conv.kernel * 6.0) + conv.bias * 6.0) / 6.0
        return super().gate(reduced)


class ExportGhostBottleneck(GhostBottleneck):
    """A `GhostBottleneck` whose Ghost modules and squeeze-excite are export forms with its
    `rewrites`."""

    rewrites = ()

    def ghost_module(self, filters, **kwargs):
        module = ExportGhostModule(filters, **kwargs)
        module.rewrites = self.rewrites
        return module

    def squeeze_excite(self, **kwargs):
        se = ExportSqueezeExcite(self.se_ratio, self.se_divisor, self.se_gate, **kwargs)
        se.rewrites = self.rewrites
        return se


_EXPORT_FORMS = {GhostModule: ExportGhostModule, GhostBottleneck: ExportGhostBottleneck}


def _export_layer(layer, module_rewrites):
    """The copy of a Ghost module or bottleneck that computes `module_rewrites`; any other
    layer (or any layer, with no module rewrite) itself."""
    form = _EXPORT_FORMS.get(type(layer))
    if form is None or not module_rewrites:
        return layer
    copy = form.from_config(layer.get_config())
    copy.rewrites = module_rewrites
    return copy


def _input_front(model):
    """(Rescaling or None, Conv2D) when the model starts with an optional Rescaling, optional
    ZeroPadding2D and a Conv2D, each used by the next only; else None."""
    from keras import layers

    taking = consumers(model)
    tensor, rescaling = model.inputs[0], None
    while True:
        following = taking.get(id(tensor), [])
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

    scale = per_channel(rescaling.scale if rescaling else 1.0, channels).astype("float32")
    offset = per_channel(rescaling.offset if rescaling else 0.0, channels).astype("float32")
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
