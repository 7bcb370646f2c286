"""A model of Keras' built-in layers only: a `.keras` file that loads without this library.

`portable(model)` rewrites any model of the library (every registry model, ghostified and
fine-tuned ones; GhostNetV3 folded first) into a functional graph of built-in layers:
Conv2D, DepthwiseConv2D, BatchNormalization, ZeroPadding2D, Concatenate, Multiply, Add,
pooling, activations, Permute and Dense. It has the same weights and computes the same
function up to float rounding, so `keras.saving.load_model` opens its file on the
TensorFlow and JAX backends where `ghostnet_tf` is not installed.

Each of the library's layers is written out as the built-in layers it is made of, named
`<layer>_<part>`. Where no built-in layer does a step exactly, it is done with fixed 0/1
weights, which pick values without changing them: a channel cut (a 1x1 convolution), the
channel padding of the CIFAR ResNets' shortcut (ZeroPadding3D on a reshaped view), and
PyTorch's nearest resize of GhostNetV2's DFC gate at odd sizes (a Dense along each axis).
"""
import numpy as np
from keras import layers

from ghostnet_tf.checks import ArgumentError
from ghostnet_tf.layers import (GhostBottleneck, GhostModule, RepConv, SqueezeExcite,
                                ZeroPadShortcut)
from ghostnet_tf.models.reparameterize import has_train_form_layers, reparameterize
from ghostnet_tf.models.transfer import clone_with_weights, from_config


def portable(model):
    """`model` (functional) as a graph of Keras' built-in layers, with its weights."""
    if has_train_form_layers(model):
        model = reparameterize(model)

    def call(layer, *args, **kwargs):
        write_out = _WRITE_OUT.get(type(layer))
        if write_out is not None:
            return write_out(_Names(layer.name), layer, args[0])
        if type(layer).__module__.startswith("ghostnet_tf"):
            raise ArgumentError("model", f"{model.name} has a {type(layer).__name__} "
                                         f"({layer.name}) that has no built-in form.")
        return layer(*args, **kwargs)

    # The library's layers are read, not copied: `call` writes them out.
    return clone_with_weights(
        model, lambda layer: layer if type(layer) in _WRITE_OUT else from_config(layer),
        call_function=call)


class _Names:
    """Names of the built-in layers that stand for one of the library's layers."""

    def __init__(self, prefix):
        self.prefix = prefix

    def __call__(self, part):
        return f"{self.prefix}_{part}"

    def sub(self, part):
        return _Names(self(part))


def _copy(layer, name, x):
    """A copy of the built-in `layer`, named `name`, applied to `x`, with its weights."""
    copy = from_config(layer, name=name)
    outputs = copy(x)
    copy.set_weights(layer.get_weights())
    return outputs


def _fixed(layer, x, weights):
    """`layer` (built-in) applied to `x`, with the fixed `weights`, which training leaves
    as they are."""
    outputs = layer(x)
    layer.set_weights(weights)
    layer.trainable = False
    return outputs


def _activation(names, activation, x):
    if activation in (False, None, "linear"):
        return x
    if activation in (True, "relu"):
        return layers.ReLU(name=names("relu"))(x)
    return layers.Activation(activation, name=names(str(activation)))(x)


def _torch_padding(names, kernel_size, x):
    """PyTorch's padding of a strided convolution (`layers.pad_like_torch`)."""
    return layers.ZeroPadding2D(kernel_size // 2, name=names("pad"))(x)


def _rep_conv(names, conv, x):
    """A folded `RepConv`: its padding and its one convolution."""
    if conv.padding == "same" and conv.strides > 1:
        x = _torch_padding(names, conv.kernel_size, x)
    return _copy(conv.conv, names("conv"), x)


def _convolution(names, conv, x):
    """A Conv2D / DepthwiseConv2D, or a folded `RepConv`, of a layer named by `names`."""
    if isinstance(conv, RepConv):
        return _rep_conv(names.sub(conv.name), conv, x)
    return _copy(conv, names(conv.name), x)


def _conv_bn_activation(names, module, conv, bn, x):
    x = _convolution(names, conv, x)
    if bn is not None:
        x = _copy(bn, names(bn.name), x)
    return _activation(names.sub(conv.name), module.activation, x)


def _first_channels(names, x, channels):
    """The first `channels` channels of `x`: a 1x1 convolution of 0/1 weights."""
    select = np.eye(x.shape[-1], channels, dtype="float32")[None, None]
    return _fixed(layers.Conv2D(channels, 1, use_bias=False, name=names("cut")), x, [select])


def _resize_axis_like_torch(names, x, size, axis):
    """PyTorch's nearest resize of height (axis 1) or width (2) to `size`: source row
    floor(i * in / out), a Dense of 0/1 weights along that axis."""
    in_size = x.shape[axis]
    if size == in_size:
        return x
    pick = np.zeros((in_size, size), "float32")
    pick[np.arange(size) * in_size // size, np.arange(size)] = 1.0
    # Move the axis last, resize, move it back.
    order = (2, 3, 1) if axis == 1 else (1, 3, 2)
    back = (3, 1, 2) if axis == 1 else (1, 3, 2)
    x = layers.Permute(order, name=names(f"axis{axis}_last"))(x)
    x = _fixed(layers.Dense(size, use_bias=False, name=names(f"resize{axis}")), x, [pick])
    return layers.Permute(back, name=names(f"axis{axis}_back"))(x)


def _upsample_like_torch(names, x, height, width):
    """`layers.upsample_nearest_like_torch`: UpSampling2D where the sizes double."""
    if (height, width) == (2 * x.shape[1], 2 * x.shape[2]):
        return layers.UpSampling2D(2, interpolation="nearest", name=names("upsample"))(x)
    x = _resize_axis_like_torch(names, x, height, 1)
    return _resize_axis_like_torch(names, x, width, 2)


def _ghost_module(names, module, inputs):
    intrinsic = _conv_bn_activation(names, module, module.primary_conv, module.primary_bn,
                                    inputs)
    outputs = intrinsic
    if module.cheap_conv is not None:
        ghost = _conv_bn_activation(names, module, module.cheap_conv, module.cheap_bn,
                                    intrinsic)
        outputs = layers.Concatenate(name=names("concat"))([intrinsic, ghost])
        if outputs.shape[-1] != module.filters:
            outputs = _first_channels(names, outputs, module.filters)
    if module.dfc:
        gate = layers.AveragePooling2D(2, strides=2, padding="valid",
                                       name=names("dfc_pool"))(inputs)
        for layer in module.dfc:
            gate = _copy(layer, names(layer.name), gate)
        gate = layers.Activation("sigmoid", name=names("dfc_sigmoid"))(gate)
        gate = _upsample_like_torch(names.sub("dfc"), gate, outputs.shape[1],
                                    outputs.shape[2])
        outputs = layers.Multiply(name=names("dfc_gate"))([outputs, gate])
    return outputs


def _squeeze_excite(names, se, inputs):
    x = layers.GlobalAveragePooling2D(keepdims=True, name=names("pool"))(inputs)
    x = layers.ReLU(name=names("relu"))(_copy(se.conv_reduce, names("conv_reduce"), x))
    x = _copy(se.conv_expand, names("conv_expand"), x)
    if se.gate_function == "clip":  # PaddleClas's clip(x, 0, 1)
        x = layers.ReLU(max_value=1.0, name=names("gate_clip"))(x)
    else:  # the official relu6(x + 3) / 6 (Keras' "hard_sigmoid" has had other slopes)
        x = layers.Rescaling(1.0, offset=3.0, name=names("gate_shift"))(x)
        x = layers.ReLU(max_value=6.0, name=names("gate_relu6"))(x)
        x = layers.Rescaling(1 / 6, name=names("gate_scale"))(x)
    return layers.Multiply(name=names("excite"))([inputs, x])


def _ghost_bottleneck(names, block, inputs):
    x = _ghost_module(names.sub("ghost1"), block.ghost1, inputs)
    if block.conv_dw is not None:
        if not isinstance(block.conv_dw, RepConv):
            x = _torch_padding(names.sub("conv_dw"), block.dw_kernel_size, x)
        x = _convolution(names, block.conv_dw, x)
        if block.bn_dw is not None:
            x = _copy(block.bn_dw, names("bn_dw"), x)
    if block.se is not None:
        x = _squeeze_excite(names.sub("se"), block.se, x)
    x = _ghost_module(names.sub("ghost2"), block.ghost2, x)
    shortcut = inputs
    if not block.has_identity_shortcut:
        if block.strides > 1:
            shortcut = _torch_padding(names.sub("shortcut_dw"), block.dw_kernel_size, shortcut)
        for layer in (block.shortcut_dw, block.shortcut_dw_bn, block.shortcut_conv,
                      block.shortcut_bn):
            shortcut = _copy(layer, names(layer.name), shortcut)
    return layers.Add(name=names("add"))([x, shortcut])


def _zero_pad_shortcut(names, shortcut, inputs):
    """Subsample (a 1x1 max pool of the stride: one value per window) and pad channels."""
    x = layers.MaxPooling2D(1, strides=shortcut.strides, name=names("subsample"))(inputs)
    height, width, channels = x.shape[1:]
    missing = shortcut.filters - channels
    x = layers.Reshape((height, width, channels, 1), name=names("as_volume"))(x)
    x = layers.ZeroPadding3D(((0, 0), (0, 0), (missing // 2, missing - missing // 2)),
                             name=names("pad_channels"))(x)
    return layers.Reshape((height, width, shortcut.filters), name=names("as_maps"))(x)


# How each of the library's layers is written out: (names, layer, inputs) -> outputs.
_WRITE_OUT = {GhostModule: _ghost_module, GhostBottleneck: _ghost_bottleneck,
              SqueezeExcite: _squeeze_excite, RepConv: _rep_conv,
              ZeroPadShortcut: _zero_pad_shortcut}


def builtin_only(model):
    """Whether every layer and operation of `model` is Keras' own."""
    return all(type(op).__module__.startswith("keras") for op in model.operations)

