"""Quantization-aware training: a model that computes in simulated int8 what the full-int8
`.tflite` file will compute, so that fine-tuning it teaches the weights to live with int8.

`quantization_aware(model)` starts from the portable model (`ghostnet_tf.portable`: every
layer of the library written out as Keras' built-in layers, GhostNetV3 folded), then does
what the LiteRT converter does to it:

- each batch norm that follows a convolution stays a batch norm in training, normalizing
  with the batch's statistics and tracking its moving ones, as in the float model: the
  convolution rounds its own kernel, one scale per output channel, which is exact to the
  folded kernel the converter rounds (per channel, round(w * s) = s * round(w) for the batch
  norm's scale s), and `fold_batch_norms` folds them for export. Frozen statistics break
  the model at the learning rates the float model takes (20 steps at lr 0.005 took a
  Fashion-MNIST GhostNetV2 to 62.70% folded, 88.23% with its batch norms training; its float
  model to 36.08% with them frozen, 88.28% training). With one scale per convolution
  (`per_channel=False`) the rounding sees the fold: the batch norm is folded at once with
  its moving statistics, which then stay fixed, and the convolution multiplies its float
  kernel by the fixed gamma / sigma before rounding it (`folded_scale`). A batch norm that
  follows anything else, and a Rescaling, become the per-channel multiply-add they are at
  inference (a 1x1 depthwise convolution: one op, one rounding); a Rescaling's is a
  constant, as in the float model;
- kernels are rounded to int8 in the forward pass, one symmetric scale per output channel
  (or per tensor, on request; always per tensor for dense layers), with a straight-through
  gradient;
- each tensor the int8 file holds gets an `ActivationQuantizer`, which tracks its range
  in training and rounds to it: the image, and every layer's output, except outputs that a
  ReLU takes as its only input (the converter fuses the two, and rounds once, after the
  ReLU), the outputs of layers that only move values (padding, reshapes, max pooling,
  nearest upsampling, dropout), which keep their input's grid, and probabilities (a
  softmax's output: its grid is fixed, and rounded they stop the loss's gradient).

Everything is Keras ops (`ghostnet_tf.quantization`), so the JAX backend trains it too.
"""
import keras
import numpy as np
from keras import layers, ops

from ghostnet_tf.compat import consumers
from ghostnet_tf.models.reparameterize import (batch_norm_inverse_sigma, batch_norm_scale_and_shift,
                                               folded_kernel_and_bias)
from ghostnet_tf.models.transfer import clone_with_weights, from_config
from ghostnet_tf.portable import portable
from ghostnet_tf.quantization import (ActivationQuantizer, QuantizedConv2D, QuantizedDense,
                                      QuantizedDepthwiseConv2D)

# Layers whose outputs hold their inputs' values (or zeros): no rounding of their own.
VALUE_MOVING = (layers.ZeroPadding2D, layers.ZeroPadding3D, layers.Reshape, layers.Permute,
                layers.MaxPooling2D, layers.UpSampling2D, layers.Dropout, layers.Flatten)


_QUANTIZED = {layers.Conv2D: QuantizedConv2D, layers.DepthwiseConv2D: QuantizedDepthwiseConv2D,
              layers.Dense: QuantizedDense}


def _is_relu(layer):
    """Whether the converter fuses `layer` into the op before it: ReLU or ReLU6."""
    if isinstance(layer, layers.ReLU):
        return (layer.negative_slope == 0 and layer.threshold == 0
                and layer.max_value in (None, 6.0))
    return isinstance(layer, layers.Activation) and layer.activation in (
        keras.activations.relu, keras.activations.relu6)


def _is_softmax(layer):
    """Whether `layer` ends in a softmax. Its output is not rounded: the converter gives
    int8 probabilities a fixed grid of 1/256, and probabilities rounded in training leave the
    cross-entropy no gradient from an example whose class rounds to 0 or 1 (clipped)."""
    return isinstance(layer, layers.Softmax) or \
        getattr(layer, "activation", None) is keras.activations.softmax


def _batch_norm_after(layer, users):
    """The batch norm that is the only user of convolution `layer`'s output, or None."""
    following = users.get(id(layer), [])
    if isinstance(layer, (layers.Conv2D, layers.DepthwiseConv2D)) and len(following) == 1 \
            and isinstance(following[0], layers.BatchNormalization):
        return following[0]
    return None


def _rescaling_multiply_add(layer):
    """[kernel, bias] of the 1x1 depthwise convolution that computes Rescaling `layer` on a
    channels-last input."""
    channels = layer.input.shape[-1]
    kernel = np.broadcast_to(np.asarray(layer.scale, "float32"), (channels,))
    bias = np.broadcast_to(np.asarray(layer.offset, "float32"), (channels,))
    return [kernel.reshape(1, 1, channels, 1), bias.copy()]


def _users(graph):
    """{id(operation): [the operations that take its output]} of a graph in which each
    operation is called once (as in the portable model)."""
    taking = consumers(graph)
    return {id(op): taking.get(id(op.output), []) for op in graph.operations
            if not isinstance(op, layers.InputLayer)}


def _fold_into(convolution, batch_norm, folded):
    """Give `folded` (the `folded_scale` form of `convolution`) the weights of `convolution`
    followed by `batch_norm`: its float kernel, the batch norm's gamma / sigma as the fixed
    `kernel_scale`, and the folded bias."""
    kernel, bias = folded_kernel_and_bias(convolution)
    scale, shift = batch_norm_scale_and_shift(batch_norm)
    folded.kernel.assign(kernel)
    folded.kernel_scale.assign(ops.reshape(scale, folded.kernel_scale.shape))
    folded.bias.assign(bias * scale + shift)


def _folded_form(convolution, per_channel):
    """The quantized convolution that stands for `convolution` and the batch norm after it."""
    form = _QUANTIZED[keras.layers.Conv2D if isinstance(convolution, layers.Conv2D)
                      else keras.layers.DepthwiseConv2D]
    return form.from_config({**convolution.get_config(), "use_bias": True,
                             "folded_scale": True, "per_channel": per_channel})


def quantization_aware(model, momentum=0.99, per_channel=True):
    """The quantization-aware form of `model` (functional), with its weights: kernels
    rounded to int8 (one scale per output channel, or with `per_channel=False` one per
    convolution, as `export.py --per-tensor` quantizes, the batch norms then folded), an
    `ActivationQuantizer` (of `momentum`) on each tensor the int8 file holds. Its quantizers
    have seen no data yet: they pass values through until the first training step."""
    graph = portable(model)
    users = _users(graph)
    # {id(convolution): the batch norm after it}; those folded at once (per tensor).
    batch_norm_of = {id(layer): bn for layer in graph.layers
                     if (bn := _batch_norm_after(layer, users)) is not None}
    after_convolution = {id(bn) for bn in batch_norm_of.values()}
    folded = set() if per_channel else after_convolution
    origin = {}  # id(new layer) -> the portable graph's layer it stands for

    def clone(layer):
        if id(layer) in batch_norm_of and not per_channel:
            new = _folded_form(layer, per_channel)
        elif type(layer) in _QUANTIZED:
            new = _QUANTIZED[type(layer)].from_config({**layer.get_config(),
                                                       "per_channel": per_channel})
        elif id(layer) in folded:
            new = layer  # never called: folded into its convolution
        elif isinstance(layer, (layers.BatchNormalization, layers.Rescaling)) \
                and id(layer) not in after_convolution:
            # One per-channel multiply-add (a 1x1 depthwise convolution): one op, rounded
            # once, where the converter would make a multiply and an add. A Rescaling's
            # stays the constant it is in the float model (trained, the image normalization's
            # multiplier, whose gradient sums pixels of up to 255, broke the model in 20
            # steps at lr 0.005); a batch norm's trains its gamma, times the fixed 1 / sigma.
            batch_norm = isinstance(layer, layers.BatchNormalization)
            new = QuantizedDepthwiseConv2D(1, per_channel=per_channel, folded_scale=batch_norm,
                                           trainable=batch_norm, name=layer.name)
        else:
            new = from_config(layer)
        origin[id(new)] = layer
        return new

    def transfer(layer, new):
        if id(layer) in batch_norm_of and new.folded_scale:
            _fold_into(layer, batch_norm_of[id(layer)], new)
        elif isinstance(layer, layers.Rescaling):
            new.set_weights(_rescaling_multiply_add(layer))
        elif isinstance(layer, layers.BatchNormalization) and id(layer) not in after_convolution:
            new.kernel.assign(ops.reshape(layer.gamma, new.kernel.shape))
            new.kernel_scale.assign(ops.reshape(batch_norm_inverse_sigma(layer),
                                                new.kernel_scale.shape))
            new.bias.assign(batch_norm_scale_and_shift(layer)[1])
        elif new is not layer and layer.weights:
            new.set_weights(layer.get_weights())

    def quantizer(name):
        return ActivationQuantizer(momentum=momentum, name=f"{name}_int8")

    inputs = keras.Input(graph.input_shape[1:], name="image")
    image = []  # the quantized image, made when the first layer takes the input

    def quantized_image(x):
        if x is not inputs:
            return x
        if not image:  # pixels: their int8 codes are the pixel values themselves
            image.append(ActivationQuantizer(fixed_range=(0, 255), name="image_int8")(inputs))
        return image[0]

    def call(layer, *args, **kwargs):
        args = keras.tree.map_structure(quantized_image, args)
        source = origin.get(id(layer), layer)
        if id(source) in folded:
            return args[0]  # the batch norm, folded into the convolution before it
        if isinstance(source, (layers.BatchNormalization, layers.Rescaling)) \
                and id(source) not in after_convolution:
            kwargs = {}  # its stand-in takes no training flag or mask
        outputs = layer(*args, **kwargs)
        if not isinstance(layer, layers.Layer) or isinstance(layer, VALUE_MOVING) \
                or _is_softmax(layer):
            return outputs  # keras.ops operations (a squeeze), value-moving layers, softmax
        following = users.get(id(source), [])
        if id(source) in batch_norm_of:
            if not per_channel:  # the users of the batch norm folded into it
                following = users.get(id(batch_norm_of[id(source)]), [])
            else:
                return outputs  # the batch norm's input, folded away in the int8 file
        if len(following) == 1 and _is_relu(following[0]):
            return outputs  # rounded once, after the ReLU that the converter fuses
        return quantizer(layer.name)(outputs)

    return clone_with_weights(graph, clone, transfer, call_function=call,
                              input_tensors=inputs)


def fold_batch_norms(model):
    """The quantization-aware `model` with each batch norm after a convolution folded into
    it, with its moving statistics (`folded_scale`), as the converter folds it: the same
    function at inference, the graph that export converts. Its other layers are `model`'s
    own, shared. Returns `model` when no batch norm is left to fold."""
    users = _users(model)
    batch_norm_of = {id(layer): bn for layer in model.layers
                     if (bn := _batch_norm_after(layer, users)) is not None}
    if not batch_norm_of:
        return model
    folded = {id(bn) for bn in batch_norm_of.values()}

    def clone(layer):
        if id(layer) in batch_norm_of:
            return _folded_form(layer, layer.per_channel)
        return layer

    def call(layer, *args, **kwargs):
        if id(layer) in folded:
            return args[0]
        return layer(*args, **kwargs)

    return clone_with_weights(model, clone,
                              lambda layer, new: _fold_into(layer, batch_norm_of[id(layer)], new),
                              call_function=call)
