"""CIFAR-style ResNets (He et al. 2016, section 4.2), VGG-16 with batch norm, and their Ghost
versions, which `ghostify` makes from the plain models, as the GhostNet paper's section 4.1.

All of them take [0, 255] pixels when `include_preprocessing` is True (rescaled to [-1, 1]
inside the model), any number of input channels, and images of 32x32 (CIFAR) or 28x28
(Fashion-MNIST; ResNets only). Their registry entries are at the end of this file.
"""
import keras
from keras import layers

from ghostnet_tf.checks import ArgumentError, check_input_shape, check_positive_int
from ghostnet_tf.data.eval_transform import PLAIN_EVAL_TRANSFORM
from ghostnet_tf.layers import ZeroPadShortcut, batch_norm
from ghostnet_tf.models import registry
from ghostnet_tf.models.ghostify import ghostify

RESNET_DEPTHS = (20, 32, 44, 56, 110)
RESNET_STAGE_FILTERS = (16, 32, 64)
# Output channels of each 3x3 convolution, "M" for a 2x2 max-pool.
VGG16_LAYERS = (64, 64, "M", 128, 128, "M", 256, 256, 256, "M",
                512, 512, 512, "M", 512, 512, 512, "M")
VGG16_DOWNSAMPLING = 32
RESNET_DOWNSAMPLING = 4
CIFAR_INPUT_SHAPE = (32, 32, 3)
# [0, 255] -> [-1, 1], every channel: (pixels / 255 - 0.5) / 0.5.
UNIT_MEAN = UNIT_STD = 0.5


def _check_arguments(input_shape, classes, min_size):
    check_input_shape(input_shape, min_size)
    check_positive_int("classes", classes)


def _conv_bn(x, filters, strides, name, relu=True):
    x = layers.Conv2D(filters, 3, strides=strides, padding="same", use_bias=False,
                      kernel_initializer="he_normal", name=f"{name}_conv")(x)
    x = batch_norm(f"{name}_bn")(x)  # PyTorch's constants, as the reproductions
    return layers.ReLU(name=f"{name}_relu")(x) if relu else x


def _inputs(input_shape, include_preprocessing):
    inputs = keras.Input(shape=input_shape, name="image")
    x = layers.Rescaling(1 / (255 * UNIT_STD), offset=-UNIT_MEAN / UNIT_STD,
                         name="preprocessing")(inputs) if include_preprocessing else inputs
    return inputs, x


def _classifier(x, classes, classifier_activation):
    x = layers.Dense(classes, name="fc")(x)
    return layers.Activation(classifier_activation, dtype="float32", name="predictions")(x)


def cifar_resnet(depth, input_shape=CIFAR_INPUT_SHAPE, classes=10, include_preprocessing=True,
                 classifier_activation="softmax", name=None):
    """A CIFAR ResNet of `depth` = 6n + 2 layers: three stages of n basic blocks of 16, 32
    and 64 filters, identity shortcuts (zero-padded where the shape changes)."""
    if isinstance(depth, bool) or not isinstance(depth, int) or depth < 8 or (depth - 2) % 6:
        raise ArgumentError("depth", f"must be 6n + 2 (e.g. {RESNET_DEPTHS}), got {depth!r}.")
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


def vgg16(input_shape=CIFAR_INPUT_SHAPE, classes=10, include_preprocessing=True,
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


def ghost_cifar_resnet(depth, ratio=2, dw_size=3, version=1, **kwargs):
    """`cifar_resnet(depth)` with every convolution but the first a Ghost module of GhostNet
    `version` (see `ghostify`); the name stays the registry's, "ghost_resnet<depth>"."""
    plain = cifar_resnet(depth, **kwargs)
    return ghostify(plain, ratio=ratio, dw_size=dw_size, version=version,
                    name=f"ghost_{plain.name}")


# ---------------------------------------------------------------------------- registry
# name: trainable params and MACs with 10 classes at 32x32, checked against the built models
# by tests/test_registry.py.
_COUNTS = {
    "resnet20": (269_722, 40_551_040), "resnet32": (464_154, 68_862_592),
    "resnet44": (658_586, 97_174_144), "resnet56": (853_018, 125_485_696),
    "resnet110": (1_727_962, 252_887_680), "vgg16": (14_724_042, 313_201_664),
    "ghost_resnet20": (139_114, 21_271_168), "ghost_resnet32": (238_794, 35_943_040),
    "ghost_resnet44": (338_474, 50_614_912), "ghost_resnet56": (438_154, 65_286_784),
    "ghost_resnet110": (886_714, 131_310_208), "ghost_vgg16": (7_388_394, 158_437_376),
}
# The Ghost versions, made by ghostify, take the paper's s (ratio) and d (dw_size), and the
# Ghost module's version.
_GHOST_OPTIONS = ("ratio", "dw_size", "version")


def _cifar_model(name, builder, family, description):
    params, macs = _COUNTS[name]
    return registry.register_model(
        name, builder=builder, family=family,
        options=(_GHOST_OPTIONS if family.startswith("ghost_") else ()) +
        ("include_preprocessing",),
        input_shape=CIFAR_INPUT_SHAPE, input_channels=None,
        eval_transform=PLAIN_EVAL_TRANSFORM,  # the test image as it is
        classes=10, params=params, macs=macs, description=description)


_RESNET = "CIFAR ResNet-{depth} (He et al. 2016, section 4.2)"
_GHOST_RESNET = ("Ghost-ResNet-{depth} (GhostNet paper, section 4.1): ResNet-{depth} with "
                 "every convolution but the first a Ghost module (s=2, d=3 by default)")


@_cifar_model("resnet20", "cifar_resnet", "cifar_resnet", _RESNET.format(depth=20))
def resnet20(**kwargs):
    return cifar_resnet(20, **kwargs)


@_cifar_model("resnet32", "cifar_resnet", "cifar_resnet", _RESNET.format(depth=32))
def resnet32(**kwargs):
    return cifar_resnet(32, **kwargs)


@_cifar_model("resnet44", "cifar_resnet", "cifar_resnet", _RESNET.format(depth=44))
def resnet44(**kwargs):
    return cifar_resnet(44, **kwargs)


@_cifar_model("resnet56", "cifar_resnet", "cifar_resnet", _RESNET.format(depth=56))
def resnet56(**kwargs):
    return cifar_resnet(56, **kwargs)


@_cifar_model("resnet110", "cifar_resnet", "cifar_resnet", _RESNET.format(depth=110))
def resnet110(**kwargs):
    return cifar_resnet(110, **kwargs)


vgg16 = _cifar_model("vgg16", None, "cifar_vgg",
                     "VGG-16 with batch norm for CIFAR (GhostNet paper, section 4.1)")(vgg16)


@_cifar_model("ghost_resnet20", "ghost_cifar_resnet", "ghost_cifar_resnet",
              _GHOST_RESNET.format(depth=20))
def ghost_resnet20(ratio=2, dw_size=3, version=1, **kwargs):
    return ghost_cifar_resnet(20, ratio, dw_size, version, **kwargs)


@_cifar_model("ghost_resnet32", "ghost_cifar_resnet", "ghost_cifar_resnet",
              _GHOST_RESNET.format(depth=32))
def ghost_resnet32(ratio=2, dw_size=3, version=1, **kwargs):
    return ghost_cifar_resnet(32, ratio, dw_size, version, **kwargs)


@_cifar_model("ghost_resnet44", "ghost_cifar_resnet", "ghost_cifar_resnet",
              _GHOST_RESNET.format(depth=44))
def ghost_resnet44(ratio=2, dw_size=3, version=1, **kwargs):
    return ghost_cifar_resnet(44, ratio, dw_size, version, **kwargs)


@_cifar_model("ghost_resnet56", "ghost_cifar_resnet", "ghost_cifar_resnet",
              _GHOST_RESNET.format(depth=56))
def ghost_resnet56(ratio=2, dw_size=3, version=1, **kwargs):
    return ghost_cifar_resnet(56, ratio, dw_size, version, **kwargs)


@_cifar_model("ghost_resnet110", "ghost_cifar_resnet", "ghost_cifar_resnet",
              _GHOST_RESNET.format(depth=110))
def ghost_resnet110(ratio=2, dw_size=3, version=1, **kwargs):
    return ghost_cifar_resnet(110, ratio, dw_size, version, **kwargs)


@_cifar_model("ghost_vgg16", "vgg16", "ghost_cifar_vgg",
              "Ghost-VGG-16 (GhostNet paper, section 4.1): VGG-16 with every convolution but "
              "the first a Ghost module (s=2, d=3 by default)")
def ghost_vgg16(ratio=2, dw_size=3, version=1, **kwargs):
    plain = vgg16(**kwargs)
    return ghostify(plain, ratio=ratio, dw_size=dw_size, version=version,
                    name=f"ghost_{plain.name}")
