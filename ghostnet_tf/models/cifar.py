"""CIFAR-style ResNets (He et al. 2016, section 4.2), VGG-16 with batch norm, and their Ghost
versions, which `ghostify` makes from the plain models, as the GhostNet paper's section 4.1.

All of them take [0, 255] pixels when `include_preprocessing` is True (rescaled to [-1, 1]
inside the model), any number of input channels, and images of 32x32 (CIFAR) or 28x28
(Fashion-MNIST; ResNets only).
"""
import keras
from keras import layers, ops

from ghostnet_tf.layers import _SERIALIZATION_PACKAGE, batch_norm
from ghostnet_tf.models.ghostify import ghostify

RESNET_DEPTHS = (20, 32, 44, 56, 110)
RESNET_STAGE_FILTERS = (16, 32, 64)
# Output channels of each 3x3 convolution, "M" for a 2x2 max-pool.
VGG16_LAYERS = (64, 64, "M", 128, 128, "M", 256, 256, 256, "M",
                512, 512, 512, "M", 512, 512, 512, "M")
VGG16_DOWNSAMPLING = 32
RESNET_DOWNSAMPLING = 4


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


def _check_arguments(input_shape, classes, min_size):
    if input_shape is None or len(input_shape) != 3:
        raise ValueError(f"`input_shape` must be (height, width, channels), got {input_shape!r}.")
    if any(size is not None and size < min_size for size in input_shape[:2]):
        raise ValueError(f"`input_shape` {tuple(input_shape)} is smaller than the network's "
                         f"downsampling: height and width must be at least {min_size}.")
    if isinstance(classes, bool) or not isinstance(classes, int) or classes < 1:
        raise ValueError(f"`classes` must be a positive integer, got {classes!r}.")


def _conv_bn(x, filters, strides, name, relu=True):
    x = layers.Conv2D(filters, 3, strides=strides, padding="same", use_bias=False,
                      kernel_initializer="he_normal", name=f"{name}_conv")(x)
    x = batch_norm(f"{name}_bn")(x)  # PyTorch's constants, as the reproductions
    return layers.ReLU(name=f"{name}_relu")(x) if relu else x


def _inputs(input_shape, include_preprocessing):
    inputs = keras.Input(shape=input_shape, name="image")
    x = layers.Rescaling(1 / 127.5, offset=-1, name="preprocessing")(inputs) \
        if include_preprocessing else inputs
    return inputs, x


def _classifier(x, classes, classifier_activation):
    x = layers.Dense(classes, name="fc")(x)
    return layers.Activation(classifier_activation, dtype="float32", name="predictions")(x)


def cifar_resnet(depth, input_shape=(32, 32, 3), classes=10, include_preprocessing=True,
                 classifier_activation="softmax", name=None):
    """A CIFAR ResNet of `depth` = 6n + 2 layers: three stages of n basic blocks of 16, 32
    and 64 filters, identity shortcuts (zero-padded where the shape changes)."""
    if isinstance(depth, bool) or not isinstance(depth, int) or depth < 8 or (depth - 2) % 6:
        raise ValueError(f"`depth` must be 6n + 2 (e.g. {RESNET_DEPTHS}), got {depth!r}.")
    _check_arguments(input_shape, classes, RESNET_DOWNSAMPLING)
    blocks_per_stage = (depth - 2) // 6
    inputs, x = _inputs(input_shape, include_preprocessing)
    x = _conv_bn(x, RESNET_STAGE_FILTERS[0], 1, "stem")
    for stage, filters in enumerate(RESNET_STAGE_FILTERS, start=1):
        for block in range(1, blocks_per_stage + 1):
            strides = 2 if stage > 1 and block == 1 else 1
            prefix = f"stage{stage}_block{block}"
            shortcut = x
            if strides > 1 or x.shape[-1] != filters:
                shortcut = ZeroPadShortcut(filters, strides, name=f"{prefix}_shortcut")(x)
            x = _conv_bn(x, filters, strides, f"{prefix}_1")
            x = _conv_bn(x, filters, 1, f"{prefix}_2", relu=False)
            x = layers.Add(name=f"{prefix}_add")([x, shortcut])
            x = layers.ReLU(name=f"{prefix}_out")(x)
    x = layers.GlobalAveragePooling2D(name="avg_pool")(x)
    outputs = _classifier(x, classes, classifier_activation)
    return keras.Model(inputs, outputs, name=name or f"resnet{depth}")


def vgg16(input_shape=(32, 32, 3), classes=10, include_preprocessing=True,
          classifier_activation="softmax", name="vgg16"):
    """VGG-16 for CIFAR: thirteen 3x3 convolutions with batch norm, five max-pools, and one
    linear classifier on the remaining 1x1x512 map."""
    _check_arguments(input_shape, classes, VGG16_DOWNSAMPLING)
    inputs, x = _inputs(input_shape, include_preprocessing)
    conv_index = pool_index = 0
    for entry in VGG16_LAYERS:
        if entry == "M":
            pool_index += 1
            x = layers.MaxPooling2D(2, name=f"pool{pool_index}")(x)
        else:
            conv_index += 1
            x = _conv_bn(x, entry, 1, f"block{conv_index}")
    x = layers.GlobalAveragePooling2D(name="avg_pool")(x)
    outputs = _classifier(x, classes, classifier_activation)
    return keras.Model(inputs, outputs, name=name)


def resnet20(**kwargs):
    return cifar_resnet(20, **kwargs)


def resnet32(**kwargs):
    return cifar_resnet(32, **kwargs)


def resnet44(**kwargs):
    return cifar_resnet(44, **kwargs)


def resnet56(**kwargs):
    """ResNet-56 for CIFAR: 0.85M parameters, 125M MACs (paper)."""
    return cifar_resnet(56, **kwargs)


def resnet110(**kwargs):
    return cifar_resnet(110, **kwargs)


def ghost_cifar_resnet(depth, ratio=2, dw_size=3, **kwargs):
    """`cifar_resnet(depth)` with every convolution but the first a Ghost module."""
    return ghostify(cifar_resnet(depth, **kwargs), ratio=ratio, dw_size=dw_size)


def ghost_resnet20(ratio=2, dw_size=3, **kwargs):
    return ghost_cifar_resnet(20, ratio, dw_size, **kwargs)


def ghost_resnet32(ratio=2, dw_size=3, **kwargs):
    return ghost_cifar_resnet(32, ratio, dw_size, **kwargs)


def ghost_resnet44(ratio=2, dw_size=3, **kwargs):
    return ghost_cifar_resnet(44, ratio, dw_size, **kwargs)


def ghost_resnet56(ratio=2, dw_size=3, **kwargs):
    """Ghost-ResNet-56 (s=2, d=3): 0.43M parameters, 63M MACs (paper)."""
    return ghost_cifar_resnet(56, ratio, dw_size, **kwargs)


def ghost_resnet110(ratio=2, dw_size=3, **kwargs):
    return ghost_cifar_resnet(110, ratio, dw_size, **kwargs)


def ghost_vgg16(ratio=2, dw_size=3, **kwargs):
    """Ghost-VGG-16 (s=2, d=3): 7.7M parameters, 158M MACs (paper)."""
    return ghostify(vgg16(**kwargs), ratio=ratio, dw_size=dw_size)
