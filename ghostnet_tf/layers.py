"""The layers of the library: `GhostModule`, `SqueezeExcite`, `GhostBottleneck`, `RepConv` and
the CIFAR ResNets' `ZeroPadShortcut`.

They follow the official PyTorch release (huawei-noah/Efficient-AI-Backbones,
`ghostnet_pytorch/ghostnet.py`, the network timm ships as `ghostnet_*`), not the older
TensorFlow release, which clips the SE gate differently and puts BN in the head.

Written with `keras` and `keras.ops` only, so they run on every Keras backend. Sublayers are
created and built in `build()`, where the input channels are known: their variables then
exist before `fit` starts, which `tf.distribute` strategies need. Every layer computes in
`self.compute_dtype`, so mixed precision works. Data format: channels last.
"""
import math

import keras
from keras import layers, ops

from ghostnet_tf.checks import ArgumentError, check_positive_int

# PyTorch's BatchNorm2d defaults: eps 1e-5, momentum 0.1 (Keras counts momentum the other way).
BN_EPSILON = 1e-5
BN_MOMENTUM = 0.9

_SERIALIZATION_PACKAGE = "ghostnet_tf"


# GhostNetV3: conv + BN branches of each re-parameterizable convolution (the official
# `num_conv_branches`).
V3_BRANCHES = 3
# What each Ghost module version adds: (DFC attention, re-parameterizable branches). GhostNetV3
# is GhostNetV2 trained with branches.
GHOST_VERSIONS = {1: (False, 0), 2: (True, 0), 3: (True, V3_BRANCHES)}


def ghost_module_version(version, attention=True):
    """The `GhostModule` options of Ghost module `version` (1, 2 or 3, `GHOST_VERSIONS`):
    {"dfc_attention", "reparam_branches"}; `attention` False leaves the DFC attention out
    (GhostNetV2 and V3 leave it out of their first two bottlenecks)."""
    if version not in GHOST_VERSIONS:
        raise ArgumentError("version", f"must be 1 (GhostNet), 2 (GhostNetV2, DFC attention) "
                                       f"or 3 (GhostNetV3, re-parameterizable branches), got "
                                       f"{version!r}.")
    dfc_attention, branches = GHOST_VERSIONS[version]
    return {"dfc_attention": dfc_attention and attention, "reparam_branches": branches}


def make_divisible(value, divisor, min_value=None):
    """Round `value` to a multiple of `divisor`, never going below 90% of it.

    The channel rounding of the official release (`_make_divisible`), used for widths and
    for the squeeze-and-excite reduction.
    """
    min_value = min_value or divisor
    rounded = max(min_value, int(value + divisor / 2) // divisor * divisor)
    if rounded < 0.9 * value:
        rounded += divisor
    return rounded


def hard_sigmoid(x):
    """The official SE gate, `relu6(x + 3) / 6`.

    Written out because Keras 2 and Keras 3 give the name "hard_sigmoid" different slopes.
    """
    return ops.relu6(x + 3.0) / 6.0


def pad_like_torch(x, kernel_size):
    """Zero-pad height and width by kernel_size // 2 on every side, as PyTorch convolutions do.

    Keras' "same" padding puts the odd pixel at the end when the stride is 2; the converted
    checkpoints need PyTorch's symmetric padding followed by a "valid" convolution.
    """
    pad = kernel_size // 2
    return ops.pad(x, ((0, 0), (pad, pad), (pad, pad), (0, 0)))


def _repeat_twice(x, axis):
    """`ops.repeat(x, 2, axis)` for NHWC tensors with static H, W and C: reshapes around a
    concatenation, ops that XNNPACK runs (`ops.repeat` converts to SHAPE, STRIDED_SLICE and
    TILE ops, and `ops.expand_dims` to EXPAND_DIMS, which XNNPACK does not take: each
    splits its graph)."""
    if any(dim is None for dim in x.shape[1:]):
        return ops.repeat(x, 2, axis=axis)
    shape = [-1] + list(x.shape[1:])
    pair = ops.reshape(x, shape[:axis + 1] + [1] + shape[axis + 1:])
    shape[axis] *= 2
    return ops.reshape(ops.concatenate([pair, pair], axis=axis + 1), shape)


def _resize_axis_like_torch(x, size, axis):
    """Nearest resize of one axis to `size` with PyTorch's index rule, source index
    floor(i * in / out). Keras' own nearest resize (and UpSampling2D) pick other rows for odd
    sizes. From a 2x2 floor pooling (out = 2 * in or 2 * in + 1) it is a repeat, plus the
    first row in front for odd sizes: no gather in the converted graph."""
    in_size = x.shape[axis]
    if isinstance(size, int) and in_size is not None:
        if size == 2 * in_size:
            return _repeat_twice(x, axis)
        if size == 2 * in_size + 1:
            first = x[:, :1] if axis == 1 else x[:, :, :1]
            return ops.concatenate([first, _repeat_twice(x, axis)], axis=axis)
    else:
        in_size = ops.shape(x)[axis]
    indices = ops.floor_divide(ops.arange(size) * in_size, size)
    return ops.take(x, indices, axis=axis)


def upsample_nearest_like_torch(x, height, width):
    """`F.interpolate(x, size=(height, width), mode="nearest")` for NHWC tensors."""
    return _resize_axis_like_torch(_resize_axis_like_torch(x, height, 1), width, 2)


def batch_norm(name, dtype=None):
    """BatchNormalization with PyTorch's constants."""
    return layers.BatchNormalization(
        epsilon=BN_EPSILON, momentum=BN_MOMENTUM, name=name, dtype=dtype)


def _channels_shape(channels):
    return (None, None, None, channels)


@keras.saving.register_keras_serializable(package=_SERIALIZATION_PACKAGE)
class RepConv(layers.Layer):
    """A convolution trained as a sum of parallel conv + batch norm branches and folded into
    one convolution with bias for inference (RepVGG, MobileOne; GhostNetV3's Ghost modules).

    Train form (`deploy=False`), branches summed: `branches` convolutions of `kernel_size`,
    each followed by a batch norm; with `scale_branch`, a 1x1 convolution and batch norm
    aligned with the kernel's centre tap; with `identity_branch`, a batch norm of the input
    itself (needs stride 1, "same" padding and as many outputs as inputs, multiplier 1 when
    depthwise). Deploy form (`deploy=True`): one convolution with bias, whose kernel and bias
    `ghostnet_tf.models.reparameterize` computes from the train form's branches.
    Padding is PyTorch's: `kernel_size // 2` on every side ("same", centred at every stride,
    the official release's) or none ("valid").

    Args:
        filters: output channels; with `depthwise`, a multiple of the input channels.
        kernel_size: odd kernel size of the main branches.
        strides: strides of every branch.
        padding: "same" or "valid", as above.
        depthwise: depthwise convolutions (output channel c * m + k from input channel c).
        branches: number of `kernel_size` conv + BN branches (GhostNetV3: 3).
        scale_branch: add the 1x1 conv + BN branch (needs `kernel_size` > 1); by default
            where `kernel_size` > 1, as GhostNetV3 does.
        identity_branch: add the BN-only branch.
        deploy: build the folded form.
        use_bias: in the folded form, whether the convolution has a bias (False where
            `reparameterize` moved it into the batch norm that follows).
    """

    def __init__(self, filters, kernel_size, strides=1, padding="same", depthwise=False,
                 branches=3, scale_branch=None, identity_branch=False, deploy=False,
                 use_bias=True, **kwargs):
        super().__init__(**kwargs)
        check_positive_int("filters", filters)
        check_positive_int("kernel_size", kernel_size, odd=True)
        check_positive_int("strides", strides)
        check_positive_int("branches", branches)
        if padding not in ("same", "valid"):
            raise ArgumentError("padding", f'must be "same" or "valid", got {padding!r}.')
        if scale_branch is None:
            scale_branch = kernel_size > 1
        elif scale_branch and kernel_size == 1:
            raise ArgumentError("scale_branch", "needs kernel_size > 1: a 1x1 scale branch "
                                                "of a 1x1 convolution is one more branch.")
        if identity_branch and (strides != 1 or padding != "same"):
            raise ArgumentError("identity_branch", "needs strides 1 and \"same\" padding, "
                                                   "where the output is aligned with the "
                                                   "input.")
        if not use_bias and not deploy:
            raise ArgumentError("use_bias", "False needs deploy=True: the train form's "
                                            "branches each have their batch norm.")
        self.filters = filters
        self.kernel_size = kernel_size
        self.strides = strides
        self.padding = padding
        self.depthwise = bool(depthwise)
        self.branches = branches
        self.scale_branch = bool(scale_branch)
        self.identity_branch = bool(identity_branch)
        self.deploy = bool(deploy)
        self.use_bias = bool(use_bias)

    def keras_padding(self):
        """The Keras padding of the convolutions, after `padded`: Keras' "same" equals
        PyTorch's centred padding at stride 1 only."""
        return "same" if self.padding == "same" and self.strides == 1 else "valid"

    def padded(self, inputs):
        """`inputs` padded for the convolutions (at strides > 1, PyTorch's padding)."""
        if self.padding == "same" and self.strides > 1:
            return pad_like_torch(inputs, self.kernel_size)
        return inputs

    def _conv(self, kernel_size, use_bias, name, input_shape):
        padding = self.keras_padding()
        if self.depthwise:
            conv = layers.DepthwiseConv2D(
                kernel_size, strides=self.strides, padding=padding, use_bias=use_bias,
                depth_multiplier=self.filters // input_shape[-1], name=name,
                dtype=self.dtype_policy)
        else:
            conv = layers.Conv2D(self.filters, kernel_size, strides=self.strides,
                                 padding=padding, use_bias=use_bias, name=name,
                                 dtype=self.dtype_policy)
        conv.build(input_shape)
        return conv

    def _batch_norm(self, name):
        bn = batch_norm(name, self.dtype_policy)
        bn.build(_channels_shape(self.filters))
        return bn

    def build(self, input_shape):
        in_channels = input_shape[-1]
        if self.depthwise and self.filters % in_channels:
            raise ArgumentError("filters", f"{self.filters} is not a multiple of the "
                                           f"{in_channels} input channels of a depthwise "
                                           f"{self.name}.")
        if self.identity_branch and self.filters != in_channels:
            raise ArgumentError("identity_branch", f"needs as many outputs as inputs; "
                                                   f"{self.name} maps {in_channels} channels "
                                                   f"to {self.filters}.")
        input_shape = _channels_shape(in_channels)
        self.convs, self.batch_norms = [], []
        self.scale_conv = self.scale_bn = self.identity_bn = self.conv = None
        if self.deploy:
            self.conv = self._conv(self.kernel_size, self.use_bias, "conv", input_shape)
            self.built = True
            return
        for index in range(self.branches):
            self.convs.append(self._conv(self.kernel_size, False, f"conv_{index}",
                                         input_shape))
            self.batch_norms.append(self._batch_norm(f"bn_{index}"))
        if self.scale_branch:
            self.scale_conv = self._conv(1, False, "scale_conv", input_shape)
            self.scale_bn = self._batch_norm("scale_bn")
        if self.identity_branch:
            self.identity_bn = self._batch_norm("identity_bn")
        self.built = True

    def call(self, inputs, training=None):
        padded = self.padded(inputs)
        if self.deploy:
            return self.conv(padded)
        outputs = [bn(conv(padded), training=training)
                   for conv, bn in zip(self.convs, self.batch_norms)]
        if self.scale_conv is not None:
            # The 1x1 kernel sits at the centre tap of the kernel_size windows.
            crop = self.kernel_size // 2 if self.padding == "valid" else 0
            centred = inputs[:, crop:-crop, crop:-crop] if crop else inputs
            outputs.append(self.scale_bn(self.scale_conv(centred), training=training))
        if self.identity_bn is not None:
            outputs.append(self.identity_bn(inputs, training=training))
        return ops.sum(ops.stack(outputs), axis=0) if len(outputs) > 1 else outputs[0]

    def get_config(self):
        return {
            **super().get_config(),
            "filters": self.filters,
            "kernel_size": self.kernel_size,
            "strides": self.strides,
            "padding": self.padding,
            "depthwise": self.depthwise,
            "branches": self.branches,
            "scale_branch": self.scale_branch,
            "identity_branch": self.identity_branch,
            "deploy": self.deploy,
            "use_bias": self.use_bias,
        }


@keras.saving.register_keras_serializable(package=_SERIALIZATION_PACKAGE)
class GhostModule(layers.Layer):
    """A convolution that computes part of its output channels cheaply.

    A primary convolution makes `ceil(filters / ratio)` intrinsic feature maps; a depthwise
    `dw_size` x `dw_size` convolution makes `ratio - 1` "ghost" maps from each of them; the two
    are concatenated and cut to `filters` channels.

    Args:
        filters: number of output channels.
        kernel_size: kernel size of the primary convolution.
        ratio: the paper's `s`; 1 / ratio of the outputs come from the primary convolution.
        dw_size: the paper's `d`, kernel size of the cheap depthwise convolution (odd).
        strides: strides of the primary convolution.
        padding: padding of the primary convolution, "same" or "valid".
        activation: True for ReLU (the official module), False for none, or the name of a
            Keras activation. It follows each part, after its batch norm.
        use_batch_norm: True (the official ImageNet module) puts a batch norm after each
            convolution; False makes a linear drop-in for a `Conv2D`, as the module of the
            official `ghost_resnet.py` is, leaving normalization to the layers that follow.
        use_bias: whether both convolutions add a bias.
        dfc_attention: GhostNetV2's decoupled fully connected attention: from the module's
            input, a 2x2 average pool (floor), a convolution like the primary one to
            `filters` channels, a horizontal 1x5 and a vertical 5x1 depthwise convolution,
            each with batch norm, a sigmoid, and a nearest upsampling with PyTorch's index
            rule to the output's size; the output is multiplied by it.
        reparam_branches: GhostNetV3's re-parameterizable module when > 0: the primary and
            the cheap convolution are each a `RepConv` of that many conv + BN branches (the
            primary with a 1x1 scale branch when its kernel is larger, and an identity branch
            when it keeps the channels at stride 1; the cheap one with a 1x1 scale branch and,
            at ratio 2, an identity branch), summed before the activation. Needs
            `use_batch_norm` and no `use_bias`: every branch has its batch norm.
        deploy: with `reparam_branches`, the folded form (one convolution with bias each).
        cheap_bias: in the folded form, whether the cheap convolution has its bias (False
            where `reparameterize` moved it into the model's batch norm that follows).
    """

    def __init__(self, filters, kernel_size=1, ratio=2, dw_size=3, strides=1, padding="same",
                 activation=True, use_batch_norm=True, use_bias=False, dfc_attention=False,
                 reparam_branches=0, deploy=False, cheap_bias=True, **kwargs):
        super().__init__(**kwargs)
        check_positive_int("filters", filters)
        check_positive_int("kernel_size", kernel_size)
        check_positive_int("ratio", ratio)
        check_positive_int("dw_size", dw_size, odd=True)
        check_positive_int("strides", strides)
        if padding not in ("same", "valid"):
            raise ArgumentError("padding", f'must be "same" or "valid", got {padding!r}.')
        if isinstance(reparam_branches, bool) or not isinstance(reparam_branches, int) or \
                reparam_branches < 0:
            raise ArgumentError("reparam_branches", "must be 0 (plain convolutions) or a "
                                                    "positive number of branches, got "
                                                    f"{reparam_branches!r}.")
        if reparam_branches and (use_bias or not use_batch_norm):
            raise ArgumentError("reparam_branches", "needs use_batch_norm=True and "
                                                    "use_bias=False: every re-parameterizable "
                                                    "branch has its own batch norm.")
        if not cheap_bias and not (reparam_branches and deploy):
            raise ArgumentError("cheap_bias", "False is for the folded form of a "
                                              "re-parameterizable module (reparam_branches "
                                              "and deploy=True); use_bias sets the others'.")
        self.filters = filters
        self.kernel_size = kernel_size
        self.ratio = ratio
        self.dw_size = dw_size
        self.strides = strides
        self.padding = padding
        self.activation = activation
        self.use_batch_norm = use_batch_norm
        self.use_bias = use_bias
        self.dfc_attention = bool(dfc_attention)
        self.reparam_branches = reparam_branches
        self.deploy = bool(deploy)
        self.cheap_bias = bool(cheap_bias)
        self.primary_filters = math.ceil(filters / ratio)
        self.cheap_filters = self.primary_filters * (ratio - 1)
        if activation is True:
            activation = "relu"
        self._activation_fn = keras.activations.get(activation or None)

    def build(self, input_shape):
        self.primary_bn = self.cheap_conv = self.cheap_bn = None
        if self.reparam_branches:
            self._build_reparameterizable(input_shape)
        else:
            self._build_plain(input_shape)
        self._build_attention(input_shape)
        self.built = True

    def _build_reparameterizable(self, input_shape):
        self.primary_conv = RepConv(
            self.primary_filters, self.kernel_size, strides=self.strides, padding=self.padding,
            branches=self.reparam_branches,
            identity_branch=(input_shape[-1] == self.primary_filters and self.strides == 1
                             and self.padding == "same"),
            deploy=self.deploy, name="primary_rep", dtype=self.dtype_policy)
        self.primary_conv.build(input_shape)
        if self.cheap_filters:
            self.cheap_conv = RepConv(
                self.cheap_filters, self.dw_size, depthwise=True,
                branches=self.reparam_branches, identity_branch=self.ratio == 2,
                deploy=self.deploy, use_bias=self.cheap_bias, name="cheap_rep",
                dtype=self.dtype_policy)
            self.cheap_conv.build(_channels_shape(self.primary_filters))

    def _build_plain(self, input_shape):
        dtype = self.dtype_policy
        self.primary_conv = layers.Conv2D(
            self.primary_filters, self.kernel_size, strides=self.strides, padding=self.padding,
            use_bias=self.use_bias, name="primary_conv", dtype=dtype)
        self.primary_conv.build(input_shape)
        if self.use_batch_norm:
            self.primary_bn = batch_norm("primary_bn", dtype)
            self.primary_bn.build(_channels_shape(self.primary_filters))
        if self.cheap_filters:
            # Output channel c * (ratio - 1) + k comes from intrinsic map c, the channel order
            # of PyTorch's grouped convolution with groups = primary_filters.
            self.cheap_conv = layers.DepthwiseConv2D(
                self.dw_size, padding="same", depth_multiplier=self.ratio - 1,
                use_bias=self.use_bias, name="cheap_conv", dtype=dtype)
            self.cheap_conv.build(_channels_shape(self.primary_filters))
            if self.use_batch_norm:
                self.cheap_bn = batch_norm("cheap_bn", dtype)
                self.cheap_bn.build(_channels_shape(self.cheap_filters))

    def _build_attention(self, input_shape):
        dtype = self.dtype_policy
        self.dfc = []
        if self.dfc_attention:
            out_shape = _channels_shape(self.filters)
            self.dfc = [
                layers.Conv2D(self.filters, self.kernel_size, strides=self.strides,
                              padding="same", use_bias=False, name="dfc_conv", dtype=dtype),
                batch_norm("dfc_bn", dtype),
                layers.DepthwiseConv2D((1, 5), padding="same", use_bias=False,
                                       name="dfc_horizontal", dtype=dtype),
                batch_norm("dfc_horizontal_bn", dtype),
                layers.DepthwiseConv2D((5, 1), padding="same", use_bias=False,
                                       name="dfc_vertical", dtype=dtype),
                batch_norm("dfc_vertical_bn", dtype),
            ]
            self.dfc[0].build(input_shape)
            for layer in self.dfc[1:]:
                layer.build(out_shape)

    def dfc_pool(self, inputs):
        """The DFC branch's 2x2 average pool (an export rewrite may compute it otherwise)."""
        return ops.average_pool(inputs, 2, strides=2, padding="valid")

    def _attention(self, inputs, height, width, training):
        """The DFC gate of `inputs`, at the output's height and width."""
        x = self.dfc_pool(inputs)
        for layer in self.dfc:
            x = layer(x, training=training) if isinstance(
                layer, layers.BatchNormalization) else layer(x)
        return self.upsample(ops.sigmoid(x), height, width)

    def upsample(self, gate, height, width):
        """The DFC gate brought to the output's size (an export rewrite may compute it
        otherwise)."""
        return upsample_nearest_like_torch(gate, height, width)

    def _convolve(self, x, conv, bn, training):
        """`conv` (with its batch norm, if any) and the activation."""
        x = conv(x, training=training) if isinstance(conv, RepConv) else conv(x)
        if bn is not None:
            x = bn(x, training=training)
        return self._activation_fn(x)

    def intrinsic_and_ghost_maps(self, inputs, training=None):
        """(intrinsic maps, ghost maps) before concatenation; ghost maps are None when
        ratio is 1. Ghost map c * (ratio - 1) + k is made from intrinsic map c."""
        intrinsic = self._convolve(inputs, self.primary_conv, self.primary_bn, training)
        if self.cheap_conv is None:
            return intrinsic, None
        return intrinsic, self._convolve(intrinsic, self.cheap_conv, self.cheap_bn, training)

    def maps(self, inputs, training=None):
        """The module's output maps before the DFC gate: intrinsic and ghost maps,
        concatenated and cut to `filters`."""
        intrinsic, ghost = self.intrinsic_and_ghost_maps(inputs, training)
        if ghost is None:
            return intrinsic
        outputs = ops.concatenate([intrinsic, ghost], axis=-1)
        if self.primary_filters + self.cheap_filters != self.filters:
            outputs = outputs[..., : self.filters]  # no slice op when channels divide
        return outputs

    def call(self, inputs, training=None):
        outputs = self.maps(inputs, training)
        if not self.dfc:
            return outputs
        height, width = outputs.shape[1], outputs.shape[2]
        if height is None or width is None:
            height, width = ops.shape(outputs)[1], ops.shape(outputs)[2]
        return outputs * self._attention(inputs, height, width, training)

    def get_config(self):
        return {
            **super().get_config(),
            "filters": self.filters,
            "kernel_size": self.kernel_size,
            "ratio": self.ratio,
            "dw_size": self.dw_size,
            "strides": self.strides,
            "padding": self.padding,
            "activation": self.activation,
            "use_batch_norm": self.use_batch_norm,
            "use_bias": self.use_bias,
            "dfc_attention": self.dfc_attention,
            "reparam_branches": self.reparam_branches,
            "deploy": self.deploy,
            "cheap_bias": self.cheap_bias,
        }


@keras.saving.register_keras_serializable(package=_SERIALIZATION_PACKAGE)
class SqueezeExcite(layers.Layer):
    """Squeeze-and-excite, by default with the official reduction and gate.

    Global average pool, 1x1 convolution to `make_divisible(channels * se_ratio, divisor)`
    channels, ReLU, 1x1 convolution back, the gate, multiply. `gate` is "hard_sigmoid", the
    official `relu6(x + 3) / 6`, or "clip", `clip(x, 0, 1)`, the gate of PaddleClas's
    GhostNet (and of the older TensorFlow release). PaddleClas reduces to `channels // 4`:
    `divisor=1` with GhostNet's channels, which are all multiples of 4.
    """

    GATES = ("hard_sigmoid", "clip")

    def __init__(self, se_ratio=0.25, divisor=4, gate="hard_sigmoid", **kwargs):
        super().__init__(**kwargs)
        if not 0 < se_ratio <= 1:
            raise ArgumentError("se_ratio", f"must be in (0, 1], got {se_ratio!r}.")
        check_positive_int("divisor", divisor)
        if gate not in self.GATES:
            raise ArgumentError("gate", f"must be one of {', '.join(self.GATES)}, got "
                                        f"{gate!r}.")
        self.se_ratio = se_ratio
        self.divisor = divisor
        self.gate_function = gate

    def build(self, input_shape):
        channels = input_shape[-1]
        reduced = make_divisible(channels * self.se_ratio, self.divisor)
        self.conv_reduce = layers.Conv2D(reduced, 1, name="conv_reduce", dtype=self.dtype_policy)
        self.conv_reduce.build((None, 1, 1, channels))
        self.conv_expand = layers.Conv2D(channels, 1, name="conv_expand", dtype=self.dtype_policy)
        self.conv_expand.build((None, 1, 1, reduced))
        self.built = True

    def call(self, inputs):
        squeezed = ops.mean(inputs, axis=(1, 2), keepdims=True)
        return inputs * self.gate(ops.relu(self.conv_reduce(squeezed)))

    def gate(self, reduced):
        """The per-channel gate of the reduced maps (an export rewrite may compute it
        otherwise)."""
        x = self.conv_expand(reduced)
        return hard_sigmoid(x) if self.gate_function == "hard_sigmoid" else ops.clip(x, 0.0, 1.0)

    def get_config(self):
        return {**super().get_config(), "se_ratio": self.se_ratio, "divisor": self.divisor,
                "gate": self.gate_function}


@keras.saving.register_keras_serializable(package=_SERIALIZATION_PACKAGE)
class ZeroPadShortcut(layers.Layer):
    """The parameter-free shortcut of the CIFAR ResNets (the paper's option A).

    Subsamples by `strides` and zero-pads the channels, half on each side, to `filters`.
    """

    def __init__(self, filters, strides=2, **kwargs):
        super().__init__(**kwargs)
        self.filters = filters
        self.strides = strides

    def call(self, inputs):
        x = inputs[:, :: self.strides, :: self.strides, :]
        missing = self.filters - inputs.shape[-1]
        return ops.pad(x, ((0, 0), (0, 0), (0, 0), (missing // 2, missing - missing // 2)))

    def compute_output_shape(self, input_shape):
        batch, height, width, _ = input_shape
        shrink = lambda size: None if size is None else -(-size // self.strides)  # noqa: E731
        return (batch, shrink(height), shrink(width), self.filters)

    def get_config(self):
        return {**super().get_config(), "filters": self.filters, "strides": self.strides}


@keras.saving.register_keras_serializable(package=_SERIALIZATION_PACKAGE)
class GhostBottleneck(layers.Layer):
    """The Ghost bottleneck (G-bneck) of GhostNet.

    Ghost module expanding to `mid_channels` (ReLU), a depthwise `dw_kernel_size` convolution
    with batch norm when `strides` is 2, optional squeeze-and-excite, a linear Ghost module
    down to `out_channels`, plus the shortcut: the input itself when the shape is unchanged,
    else depthwise convolution + BN + 1x1 convolution + BN. With `dfc_attention` the first
    Ghost module has GhostNetV2's DFC attention (the GhostNetV2 bottleneck). With
    `reparam_branches` (GhostNetV3) both Ghost modules are re-parameterizable and the strided
    depthwise convolution is a `RepConv` of that many branches and a 1x1 scale branch;
    `deploy` builds their folded form. `se_divisor` and `se_gate` are the squeeze-excite's
    `divisor` and `gate` (PaddleClas's GhostNet: 1 and "clip").
    """

    def __init__(self, mid_channels, out_channels, dw_kernel_size=3, strides=1, se_ratio=0.0,
                 dfc_attention=False, reparam_branches=0, deploy=False, se_divisor=4,
                 se_gate="hard_sigmoid", **kwargs):
        super().__init__(**kwargs)
        check_positive_int("mid_channels", mid_channels)
        check_positive_int("out_channels", out_channels)
        check_positive_int("dw_kernel_size", dw_kernel_size, odd=True)
        check_positive_int("strides", strides)
        if not 0 <= se_ratio <= 1:
            raise ArgumentError("se_ratio", f"must be in [0, 1], got {se_ratio!r}.")
        self.mid_channels = mid_channels
        self.out_channels = out_channels
        self.dw_kernel_size = dw_kernel_size
        self.strides = strides
        self.se_ratio = se_ratio
        self.dfc_attention = bool(dfc_attention)
        # Checked (with its message) by the Ghost modules it is passed to.
        self.reparam_branches = reparam_branches
        self.deploy = bool(deploy)
        # Checked by the squeeze-excite, where there is one.
        self.se_divisor = se_divisor
        self.se_gate = se_gate

    def ghost_module(self, filters, **kwargs):
        """The bottleneck's Ghost modules (a subclass may build another kind)."""
        return GhostModule(filters, **kwargs)

    def squeeze_excite(self, **kwargs):
        """The bottleneck's squeeze-excite (a subclass may build another kind)."""
        return SqueezeExcite(self.se_ratio, self.se_divisor, self.se_gate, **kwargs)

    def _depthwise(self, name):
        return layers.DepthwiseConv2D(
            self.dw_kernel_size, strides=self.strides,
            padding="valid" if self.strides > 1 else "same",
            use_bias=False, name=name, dtype=self.dtype_policy)

    def build(self, input_shape):
        in_channels = input_shape[-1]
        dtype = self.dtype_policy
        mid_shape = _channels_shape(self.mid_channels)
        reparam = {"reparam_branches": self.reparam_branches, "deploy": self.deploy}
        self.ghost1 = self.ghost_module(self.mid_channels, activation=True,
                                        dfc_attention=self.dfc_attention, name="ghost1",
                                        dtype=dtype, **reparam)
        self.ghost1.build(input_shape)
        self.conv_dw = self.bn_dw = None
        if self.strides > 1 and self.reparam_branches:
            self.conv_dw = RepConv(
                self.mid_channels, self.dw_kernel_size, strides=self.strides, depthwise=True,
                branches=self.reparam_branches, deploy=self.deploy, name="dw_rep", dtype=dtype)
            self.conv_dw.build(mid_shape)
        elif self.strides > 1:
            self.conv_dw = self._depthwise("conv_dw")
            self.conv_dw.build(mid_shape)
            self.bn_dw = batch_norm("bn_dw", dtype)
            self.bn_dw.build(mid_shape)
        self.se = None
        if self.se_ratio > 0:
            self.se = self.squeeze_excite(name="se", dtype=dtype)
            self.se.build(mid_shape)
        self.ghost2 = self.ghost_module(self.out_channels, activation=False, name="ghost2",
                                        dtype=dtype, **reparam)
        self.ghost2.build(mid_shape)
        self.has_identity_shortcut = in_channels == self.out_channels and self.strides == 1
        self.shortcut_dw = self.shortcut_dw_bn = self.shortcut_conv = self.shortcut_bn = None
        if not self.has_identity_shortcut:
            in_shape = _channels_shape(in_channels)
            self.shortcut_dw = self._depthwise("shortcut_dw")
            self.shortcut_dw.build(in_shape)
            self.shortcut_dw_bn = batch_norm("shortcut_dw_bn", dtype)
            self.shortcut_dw_bn.build(in_shape)
            self.shortcut_conv = layers.Conv2D(
                self.out_channels, 1, use_bias=False, name="shortcut_conv", dtype=dtype)
            self.shortcut_conv.build(in_shape)
            self.shortcut_bn = batch_norm("shortcut_bn", dtype)
            self.shortcut_bn.build(_channels_shape(self.out_channels))
        self.built = True

    def _pad_for_stride(self, x):
        return pad_like_torch(x, self.dw_kernel_size) if self.strides > 1 else x

    def call(self, inputs, training=None):
        x = self.ghost1(inputs, training=training)
        if isinstance(self.conv_dw, RepConv):
            x = self.conv_dw(x, training=training)
        elif self.conv_dw is not None:
            x = self.bn_dw(self.conv_dw(self._pad_for_stride(x)), training=training)
        if self.se is not None:
            x = self.se(x)
        x = self.ghost2(x, training=training)
        if self.has_identity_shortcut:
            return x + inputs
        shortcut = self.shortcut_dw(self._pad_for_stride(inputs))
        shortcut = self.shortcut_dw_bn(shortcut, training=training)
        shortcut = self.shortcut_bn(self.shortcut_conv(shortcut), training=training)
        return x + shortcut

    def get_config(self):
        return {
            **super().get_config(),
            "mid_channels": self.mid_channels,
            "out_channels": self.out_channels,
            "dw_kernel_size": self.dw_kernel_size,
            "strides": self.strides,
            "se_ratio": self.se_ratio,
            "dfc_attention": self.dfc_attention,
            "reparam_branches": self.reparam_branches,
            "deploy": self.deploy,
            "se_divisor": self.se_divisor,
            "se_gate": self.se_gate,
        }


# A model, not a layer: here because this module is imported (and its classes registered)
# as soon as Keras is, so that a file holding it loads after `import ghostnet_tf` alone.
@keras.saving.register_keras_serializable(package=_SERIALIZATION_PACKAGE)
class FeaturePyramidModel(keras.Model):
    """A functional model whose outputs are a dict of feature maps keyed by level ("P2" for
    stride 4 ... "P5" for stride 32), also given as its `pyramid_outputs` attribute: what
    keras-hub's `RetinaNetBackbone` and `DeepLabV3Backbone` read from their `image_encoder`.
    Loading it again (alone or inside a detector's file) restores the attribute."""

    def __init__(self, inputs, outputs, name=None, **kwargs):
        super().__init__(inputs, outputs, name=name, **kwargs)
        self.pyramid_outputs = dict(outputs)
