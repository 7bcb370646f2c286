"""GhostNet for ImageNet, the architecture of the official PyTorch release.

Built by one function, `GhostNet`, from one table of stages, in the `keras.applications`
style. Layer names map one-to-one to the official state_dict's modules (see
`ghostnet_tf.weights` and docs/architecture.md), so that its checkpoints and timm's
`ghostnet_*` convert by name. PaddleClas's GhostNet is the same network with another
squeeze-excite and head (`DESIGNS`), built by the same function. The registry entries of
the published widths are at the end of this file.
"""
import dataclasses
import os

import keras
from keras import layers

from ghostnet_tf import weights as weights_lib
from ghostnet_tf.checks import ArgumentError, check_input_shape, check_positive_int
from ghostnet_tf.data.eval_transform import EvalTransform
from ghostnet_tf.imagenet import IMAGENET_INPUT_SIZE, IMAGENET_MEAN, IMAGENET_STD
from ghostnet_tf.layers import (FeaturePyramidModel, GhostBottleneck, batch_norm,
                                ghost_module_version, make_divisible)
from ghostnet_tf.models import registry
from ghostnet_tf.weights import PublishedWeights, WeightSource

# One row per bottleneck: dw kernel, expansion (mid) channels, output channels, SE ratio,
# stride. One tuple per stage, as `blocks.<stage>.<block>` in the official release.
GHOSTNET_STAGES = (
    ((3, 16, 16, 0.0, 1),),
    ((3, 48, 24, 0.0, 2),),
    ((3, 72, 24, 0.0, 1),),
    ((5, 72, 40, 0.25, 2),),
    ((5, 120, 40, 0.25, 1),),
    ((3, 240, 80, 0.0, 2),),
    ((3, 200, 80, 0.0, 1),
     (3, 184, 80, 0.0, 1),
     (3, 184, 80, 0.0, 1),
     (3, 480, 112, 0.25, 1),
     (3, 672, 112, 0.25, 1)),
    ((5, 672, 160, 0.25, 2),),
    ((5, 960, 160, 0.0, 1),
     (5, 960, 160, 0.25, 1),
     (5, 960, 160, 0.0, 1),
     (5, 960, 160, 0.25, 1)),
)
STEM_CHANNELS = 16
HEAD_CHANNELS = 1280
LAST_STAGE = len(GHOSTNET_STAGES)  # the 1x1 ConvBnAct after the bottlenecks: blocks.9.0
NETWORK_STRIDE = 32


def _stage_strides():
    """The network stride after each stage (the stem already halves the input)."""
    stride, strides = 2, []
    for stage in GHOSTNET_STAGES:
        for *_, block_stride in stage:
            stride *= block_stride
        strides.append(stride)
    return strides


def pyramid_layer_names():
    """Name of the last layer at each network stride 4, 8, 16 and 32, keyed "P2".."P5"."""
    names = {}
    for stage_index, stride in enumerate(_stage_strides()):
        last_block = len(GHOSTNET_STAGES[stage_index]) - 1
        names[stride] = f"blocks_{stage_index}_{last_block}"
    names[NETWORK_STRIDE] = f"blocks_{LAST_STAGE}_act"
    return {f"P{stride.bit_length() - 1}": names[stride] for stride in (4, 8, 16, 32)}


@dataclasses.dataclass(frozen=True)
class Design:
    """Where a GhostNet's code departs from the official release's, and what its checkpoints
    are."""
    suffix: str  # of its registry names
    se_divisor: int  # the squeeze-excite's reduction (SqueezeExcite's `divisor`)
    se_gate: str  # the squeeze-excite's gate (SqueezeExcite's `gate`)
    # The 1x1 convolution to 1280 before the classifier: with a batch norm and no bias, or
    # with a bias (the official release).
    head_batch_norm: bool
    checkpoint_format: str  # "pytorch" or "paddle" (ghostnet_tf.weights)


DESIGNS = {
    "official": Design("", se_divisor=4, se_gate="hard_sigmoid", head_batch_norm=False,
                       checkpoint_format="pytorch"),
    # PaddleClas's ppcls/arch/backbone/model_zoo/ghostnet.py: the squeeze-excite reduces to
    # channels // 4 with fully connected layers (the same as 1x1 convolutions on the pooled
    # maps) and gates with clip(x, 0, 1), as the older TensorFlow release did; the head's
    # convolution has a batch norm. The rest (stages, widths, padding, batch norm epsilon
    # 1e-5) is the official network's.
    "paddleclas": Design("_paddle", se_divisor=1, se_gate="clip", head_batch_norm=True,
                         checkpoint_format="paddle"),
}


def model_name(width, version=1, design="official"):
    """The registry name of GhostNet (version 1, 2 or 3) at `width`: "ghostnet_100" for 1.0,
    "ghostnetv2_130" for GhostNetV2 1.3, "ghostnet_130_paddle" for PaddleClas's 1.3."""
    return (f"ghostnet{'' if version == 1 else f'v{version}'}_{round(width * 100):03d}"
            f"{DESIGNS[design].suffix}")


# GhostNetV2 and V3: the Ghost module of every bottleneck but the first DFC_FROM_LAYER has
# DFC attention (the official `layer_id > 1`).
DFC_FROM_LAYER = 2


def _architecture(width, version, design="official"):
    """What `ghostnet_tf.weights` needs to load weights into GhostNet `version` at `width`."""
    name = model_name(width, version, design)

    def fold(model):
        from ghostnet_tf.models.reparameterize import reparameterize
        return reparameterize(model)

    return weights_lib.Architecture(
        name=name, published=_WEIGHTS.get(name, {}), fold=fold if version == 3 else None,
        checkpoint_format=DESIGNS[design].checkpoint_format,
        build=lambda classes: _ghostnet(version, width, classes=classes,
                                        include_preprocessing=False, design=design,
                                        input_shape=(IMAGENET_INPUT_SIZE,) * 2 + (3,)))


def normalization(mean, std, name="preprocessing"):
    """Map [0, 255] pixels to (pixels / 255 - mean) / std, channel by channel."""
    return layers.Rescaling(scale=[1.0 / (255.0 * s) for s in std],
                            offset=[-m / s for m, s in zip(mean, std)], name=name)


def GhostNet(width=1.0, include_top=True, weights=None, input_shape=None, input_tensor=None,
             pooling=None, classes=1000, classifier_activation="softmax", dropout=0.2,
             include_preprocessing=True, name=None, design="official"):
    """GhostNet ("GhostNet: More Features from Cheap Operations", Han et al., CVPR 2020).

    Args:
        width: width multiplier; the paper's models are 0.5, 1.0 and 1.3.
        include_top: whether to include the head (1x1 convolution to 1280, classifier).
        weights: None (random initialization), "imagenet" (the published ImageNet weights:
            downloaded, converted and cached in $KERAS_HOME/models on first use), or a file:
            a `.weights.h5` file or a PyTorch checkpoint of the official release or timm
            (`.safetensors`, `.pth`, `.pth.tar`, `.bin`), converted on the fly.
            Without the top, or with another number of classes, every layer but the
            classifier is loaded (fine-tuning).
        input_shape: (height, width, 3); defaults to (224, 224, 3) with the top and
            (None, None, 3) without. Height and width must be at least 32.
        input_tensor: optional Keras tensor to use as the image input.
        pooling: without the top, None (4D output), "avg" or "max".
        classes: number of classes, with the top.
        classifier_activation: activation of the "predictions" layer; None for logits.
        dropout: dropout rate before the classifier.
        include_preprocessing: when True the model takes [0, 255] RGB pixels and normalizes
            them with the ImageNet mean and std; when False it takes normalized images.
        name: model name; defaults to "ghostnet_<100 * width>", e.g. "ghostnet_100", with
            "_paddle" after it for PaddleClas's design.
        design: "official" (the official release, timm) or "paddleclas", PaddleClas's
            GhostNet, whose weights (0.5, 1.0, 1.3 and the distilled 1.3, `weights=
            "imagenet_ssld"`) are PaddlePaddle `.pdparams` files: another squeeze-excite
            and head (see `DESIGNS`).

    Returns:
        A functional `keras.Model`.
    """
    return _ghostnet(1, width, include_top, weights, input_shape, input_tensor, pooling,
                     classes, classifier_activation, dropout, include_preprocessing, name,
                     design=design)


def GhostNetV2(width=1.0, include_top=True, weights=None, input_shape=None, input_tensor=None,
               pooling=None, classes=1000, classifier_activation="softmax", dropout=0.2,
               include_preprocessing=True, name=None):
    """GhostNetV2 ("GhostNetV2: Enhance Cheap Operation with Long-Range Attention", Tang et
    al., NeurIPS 2022): GhostNet whose bottlenecks, all but the first two, have DFC attention
    in their first Ghost module. The arguments are `GhostNet`'s; the published widths are
    1.0, 1.3 and 1.6, and the name defaults to "ghostnetv2_<100 * width>"."""
    return _ghostnet(2, width, include_top, weights, input_shape, input_tensor, pooling,
                     classes, classifier_activation, dropout, include_preprocessing, name)


def GhostNetV3(width=1.0, include_top=True, weights=None, input_shape=None, input_tensor=None,
               pooling=None, classes=1000, classifier_activation="softmax", dropout=0.2,
               include_preprocessing=True, name=None, deploy=False):
    """GhostNetV3 ("GhostNetV3: Exploring the Training Strategies for Compact Models", Liu et
    al., 2024): GhostNetV2 trained with re-parameterizable branches. Every Ghost module's
    convolutions and every strided depthwise convolution are `RepConv`s of 3 conv + BN
    branches (and 1x1 and identity branches); `deploy=True` builds the folded form, GhostNetV2's
    network with biases instead of those batch norms, which `reparameterize` makes from a
    trained model. Weights are of the train form ("imagenet", timm's file, and "imagenet_ema",
    the official release's EMA weights, for 1.0x; or a file); a deploy model folds them after
    loading. The other arguments are `GhostNet`'s; the widths are 0.5,
    1.0, 1.3 and 1.6 (ImageNet weights are published for 1.0), the name defaults to
    "ghostnetv3_<100 * width>"."""
    if not deploy or weights is None:
        return _ghostnet(3, width, include_top, None if deploy else weights, input_shape,
                         input_tensor, pooling, classes, classifier_activation, dropout,
                         include_preprocessing, name, deploy=deploy)
    from ghostnet_tf.models.reparameterize import fold_weights

    model = _ghostnet(3, width, include_top, None, input_shape, input_tensor, pooling, classes,
                      classifier_activation, dropout, include_preprocessing, name, deploy=True)
    trained = _ghostnet(3, width, include_top, weights, model.input_shape[1:], None, pooling,
                        classes, classifier_activation, dropout, include_preprocessing, name)
    fold_weights(trained, model)
    return model


def _ghostnet(version, width=1.0, include_top=True, weights=None, input_shape=None,
              input_tensor=None, pooling=None, classes=1000, classifier_activation="softmax",
              dropout=0.2, include_preprocessing=True, name=None, deploy=False,
              design="official"):
    """GhostNet (version 1, of either design), GhostNetV2 (2) or GhostNetV3 (3, in its
    `deploy` form or not), as `GhostNet` describes."""
    if design not in DESIGNS:
        raise ArgumentError("design", f"must be one of {', '.join(DESIGNS)}, got {design!r}.")
    form = DESIGNS[design]
    if isinstance(width, bool) or not isinstance(width, (int, float)) or width <= 0:
        raise ArgumentError("width", f"must be a positive number (e.g. 0.5, 1.0, 1.3), got "
                                     f"{width!r}.")
    if include_top:
        check_positive_int("classes", classes)
    if pooling not in (None, "avg", "max"):
        raise ArgumentError("pooling", f'must be None, "avg" or "max", got {pooling!r}.')
    if not 0 <= dropout < 1:
        raise ArgumentError("dropout", f"must be in [0, 1), got {dropout!r}.")
    if input_shape is None and input_tensor is not None:
        input_shape = tuple(input_tensor.shape[1:])
    if input_shape is None:
        input_shape = (IMAGENET_INPUT_SIZE,) * 2 + (3,) if include_top else (None, None, 3)
    check_input_shape(tuple(input_shape), NETWORK_STRIDE, 3 if include_preprocessing else None)

    if input_tensor is None:
        inputs = keras.Input(shape=input_shape, name="image")
        x = inputs
    else:
        sources = keras.utils.get_source_inputs(input_tensor)
        inputs = sources[0] if len(sources) == 1 else sources
        x = input_tensor

    if include_preprocessing:
        x = normalization(IMAGENET_MEAN, IMAGENET_STD)(x)
    stem_channels = make_divisible(STEM_CHANNELS * width, 4)
    x = layers.ZeroPadding2D(1, name="conv_stem_pad")(x)
    x = layers.Conv2D(stem_channels, 3, strides=2, use_bias=False, name="conv_stem")(x)
    x = batch_norm("bn1")(x)
    x = layers.ReLU(name="act1")(x)

    layer_id = 0
    for stage_index, stage in enumerate(GHOSTNET_STAGES):
        for block_index, (kernel, expansion, channels, se_ratio, strides) in enumerate(stage):
            x = GhostBottleneck(
                make_divisible(expansion * width, 4), make_divisible(channels * width, 4),
                dw_kernel_size=kernel, strides=strides, se_ratio=se_ratio,
                **ghost_module_version(version, attention=layer_id >= DFC_FROM_LAYER),
                deploy=deploy, se_divisor=form.se_divisor, se_gate=form.se_gate,
                name=f"blocks_{stage_index}_{block_index}")(x)
            layer_id += 1
    last_expansion = GHOSTNET_STAGES[-1][-1][1]
    prefix = f"blocks_{LAST_STAGE}"
    x = layers.Conv2D(make_divisible(last_expansion * width, 4), 1, use_bias=False,
                      name=f"{prefix}_conv")(x)
    x = batch_norm(f"{prefix}_bn")(x)
    x = layers.ReLU(name=f"{prefix}_act")(x)

    if include_top:
        x = layers.GlobalAveragePooling2D(keepdims=True, name="global_pool")(x)
        x = layers.Conv2D(HEAD_CHANNELS, 1, use_bias=not form.head_batch_norm,
                          name="conv_head")(x)
        if form.head_batch_norm:
            x = batch_norm("head_bn")(x)
        x = layers.ReLU(name="act2")(x)
        # Squeeze, not Flatten: Flatten (and Reshape) convert to SHAPE/STRIDED_SLICE/PACK
        # ops, which XNNPACK does not take, splitting the LiteRT graph in two.
        x = keras.ops.squeeze(x, axis=(1, 2))
        if dropout > 0:
            x = layers.Dropout(dropout, name="dropout")(x)
        x = layers.Dense(classes, name="classifier")(x)
        # float32 output, also under a mixed-precision policy.
        x = layers.Activation(classifier_activation, dtype="float32", name="predictions")(x)
    elif pooling == "avg":
        x = layers.GlobalAveragePooling2D(name="avg_pool")(x)
    elif pooling == "max":
        x = layers.GlobalMaxPooling2D(name="max_pool")(x)

    model = keras.Model(inputs, x, name=name or model_name(width, version, design))
    if weights is not None:
        weights_lib.load_weights(model, weights, _architecture(width, version, design),
                                 classes if include_top else None)
    return model


def feature_pyramid(backbone):
    """A model giving `backbone`'s feature maps at strides 4, 8, 16 and 32.

    `backbone` is a GhostNet of any version, with or without its top. The outputs are a dict
    keyed "P2", "P3", "P4", "P5" (keras-hub's naming: level = log2 of the stride), each the
    last block's output at that stride; the model (a `FeaturePyramidModel`) also has them as
    `pyramid_outputs`, so that keras-hub's `RetinaNetBackbone` and `DeepLabV3Backbone` take
    it as their `image_encoder`. Its input is the backbone's: RGB in [0, 255].
    """
    names = pyramid_layer_names()
    try:
        outputs = {level: backbone.get_layer(name).output for level, name in names.items()}
    except ValueError as error:
        raise ArgumentError("backbone", f"{backbone.name!r} is not a GhostNet: {error}") \
            from error
    return FeaturePyramidModel(backbone.input, outputs, name=f"{backbone.name}_pyramid")


# ---------------------------------------------------------------------------- registry
# The variants and their registry entries: name, GhostNet version, trainable params and MACs
# (1000 classes, 224x224; for GhostNetV3 those of the train form it builds, then of the form
# `reparameterize` folds it to), checked against the built models by tests/test_registry.py.
_COUNTS = {
    "ghostnet_050": (1, 2_587_292, 42_328_152),
    "ghostnet_100": (1, 5_182_508, 141_150_512),
    "ghostnet_130": (1, 7_358_820, 227_003_256),
    "ghostnet_050_paddle": (1, 2_588_232, 42_327_816),
    "ghostnet_100_paddle": (1, 5_183_016, 141_149_744),
    "ghostnet_130_paddle": (1, 7_352_622, 226_995_784),
    "ghostnetv2_100": (2, 6_156_908, 167_048_288),
    "ghostnetv2_130": (2, 8_960_404, 269_322_976),
    "ghostnetv2_160": (2, 12_392_698, 398_607_224),
    "ghostnetv3_050": (3, 3_395_384, 117_528_000, 2_853_176, 49_640_656),
    "ghostnetv3_100": (3, 8_129_028, 404_128_320, 6_147_588, 167_048_288),
    "ghostnetv3_130": (3, 12_217_720, 654_842_824, 8_948_296, 269_322_976),
    "ghostnetv3_160": (3, 17_275_700, 971_574_612, 12_377_778, 398_607_224),
}
# The official release evaluates GhostNet with torchvision's Resize(256) (bilinear) and
# CenterCrop(224). GhostNetV2's and V3's published figures that carry their transform are
# timm's (results-imagenet.csv: crop 0.875, bicubic), so their entries use that.
_OFFICIAL_EVAL = EvalTransform("bilinear", 0.875)
# PaddleClas evaluates with OpenCV's bilinear resize of the short side to 256 and a 224 crop
# (ppcls/configs/ImageNet/GhostNet/*.yaml), ImageNet's mean and std: the same transform.
_PADDLECLAS_EVAL = _OFFICIAL_EVAL
_TIMM_EVAL = EvalTransform("bicubic", 0.875)
# Published weights. "imagenet" is timm's file on the Hugging Face hub (model.safetensors:
# read without torch or a pickle, cached and resumed by huggingface_hub), the official
# release's file after it (a pickle, read with torch only, `weights_only=True`) where the hub
# cannot be reached; timm converted its files from those releases, taking their `state_dict`.
# GhostNetV3's release also holds the EMA weights, which measure 0.2 point better:
# "imagenet_ema".
_V1_RELEASE = "huawei-noah/CV-backbones/releases/download"
_RELEASE = "huawei-noah/Efficient-AI-Backbones/releases/download"
# The official repository's licences: ghostnet_pytorch/License.txt is Apache 2.0; the
# GhostNetV2 and V3 folders have none of their own, so the repository's License.txt
# (BSD 3-clause) holds for them.
_V1_LICENSE = "apache-2.0"
_V2_V3_LICENSE = "bsd-3-clause"
# PaddleClas publishes its weights under its own licence, Apache 2.0; the files are on Baidu's
# object storage (the `paddle` site of WeightSource). "_ssld" is PaddleClas's naming of the
# weights distilled with its SSLD recipe.
_PADDLECLAS_LICENSE = "apache-2.0"


def _paddleclas(scale, top1, ssld=False):
    return PublishedWeights(
        sources=(WeightSource(site="paddle", release=f"dygraph/GhostNet_x{scale}"
                                                     f"{'_ssld' if ssld else ''}"
                                                     "_pretrained.pdparams"),),
        top1=top1, measured_with=_PADDLECLAS_EVAL,
        measured_by="PaddleClas's model zoo (docs: GhostNet.md and the SSLD table)",
        license=_PADDLECLAS_LICENSE)


def _timm_and_release(name, release, checkpoint_key="state_dict"):
    return (WeightSource(hub_id=f"timm/{name}.in1k"),
            WeightSource(release=release, checkpoint_key=checkpoint_key))


_WEIGHTS = {
    "ghostnet_100": {"imagenet": PublishedWeights(
        sources=_timm_and_release("ghostnet_100", f"{_V1_RELEASE}/ghostnet_pth/ghostnet_1x.pth"),
        top1=73.98, measured_with=_OFFICIAL_EVAL,
        measured_by="the official release (ghostnet_pytorch/validate.py: Resize(256), "
                    "CenterCrop(224)); timm's results-imagenet.csv: 73.982 with bilinear, "
                    "crop 0.875", license=_V1_LICENSE)},
    **{name: {"imagenet": PublishedWeights(
        sources=_timm_and_release(name, f"{_RELEASE}/GhostNetV2/{file}"),
        top1=top1, measured_with=_TIMM_EVAL,
        measured_by="timm's results-imagenet.csv (the official README gives 75.3% for 1.0x)",
        license=_V2_V3_LICENSE)}
       for name, top1, file in (("ghostnetv2_100", 75.186, "ck_ghostnetv2_10.pth.tar"),
                                ("ghostnetv2_130", 76.746, "ck_ghostnetv2_13.pth.tar"),
                                ("ghostnetv2_160", 77.836, "ck_ghostnetv2_16.pth.tar"))},
    # Only 1.0x is published. The release's state_dict is timm's file (76.930% in PaddleClas'
    # and timm's measurements); its state_dict_ema 77.134% (PaddleClas, GhostNetV3.md).
    "ghostnetv3_100": {
        "imagenet": PublishedWeights(
            sources=_timm_and_release("ghostnetv3_100", f"{_RELEASE}/GhostNetV3/"
                                                        "ghostnetv3-1.0.pth.tar"),
            top1=76.93, measured_with=_TIMM_EVAL,
            measured_by="timm and PaddleClas (GhostNetV3.md) for timm's file, the "
                        "release's state_dict", license=_V2_V3_LICENSE),
        "imagenet_ema": PublishedWeights(
            sources=(WeightSource(release=f"{_RELEASE}/GhostNetV3/"
                                                   "ghostnetv3-1.0.pth.tar",
                                           checkpoint_key="state_dict_ema"),),
            top1=77.134, measured_with=_TIMM_EVAL,
            measured_by="PaddleClas (GhostNetV3.md) for the official release's "
                        "state_dict_ema; the paper gives 77.1%", license=_V2_V3_LICENSE)},
    "ghostnet_050_paddle": {"imagenet": _paddleclas("0_5", 66.8)},
    "ghostnet_100_paddle": {"imagenet": _paddleclas("1_0", 74.0)},
    "ghostnet_130_paddle": {"imagenet": _paddleclas("1_3", 75.7),
                            "imagenet_ssld": _paddleclas("1_3", 79.4, ssld=True)},
}
_PAPERS = {1: ("GhostNet", "Han et al., CVPR 2020"), 2: ("GhostNetV2", "Tang et al., NeurIPS 2022"),
           3: ("GhostNetV3", "Liu et al., 2024")}


def _variant(name, width, design="official"):
    """Register the decorated constructor as the variant `name` of width `width`."""
    version, params, macs, *deployed = _COUNTS[name]
    paper, authors = _PAPERS[version]
    family = ("ghostnet" if version == 1 else f"ghostnetv{version}") + DESIGNS[design].suffix
    description = f"{paper} {width}x ({authors}) for ImageNet"
    if design != "official":
        description += f", in the {design} design (`GhostNet(design=\"{design}\")`)"
    return registry.register_model(
        name, builder=paper, family=family,
        options=("dropout", "weights", "include_preprocessing"),
        input_shape=(IMAGENET_INPUT_SIZE, IMAGENET_INPUT_SIZE, 3),
        input_channels=3, eval_transform=_OFFICIAL_EVAL if version == 1 else _TIMM_EVAL,
        classes=1000, params=params, macs=macs, weights=_WEIGHTS.get(name, {}), width=width,
        description=description,
        deploy_params=deployed[0] if deployed else None,
        deploy_macs=deployed[1] if deployed else None)


# Registration order is listing order.
@_variant("ghostnet_050", 0.5)
def GhostNet050(**kwargs):
    return GhostNet(width=0.5, **kwargs)


@_variant("ghostnet_100", 1.0)
def GhostNet100(**kwargs):
    return GhostNet(width=1.0, **kwargs)


@_variant("ghostnet_130", 1.3)
def GhostNet130(**kwargs):
    return GhostNet(width=1.3, **kwargs)


@_variant("ghostnet_050_paddle", 0.5, "paddleclas")
def GhostNet050Paddle(**kwargs):
    return GhostNet(width=0.5, design="paddleclas", **kwargs)


@_variant("ghostnet_100_paddle", 1.0, "paddleclas")
def GhostNet100Paddle(**kwargs):
    return GhostNet(width=1.0, design="paddleclas", **kwargs)


@_variant("ghostnet_130_paddle", 1.3, "paddleclas")
def GhostNet130Paddle(**kwargs):
    return GhostNet(width=1.3, design="paddleclas", **kwargs)


@_variant("ghostnetv2_100", 1.0)
def GhostNetV2_100(**kwargs):
    return GhostNetV2(width=1.0, **kwargs)


@_variant("ghostnetv2_130", 1.3)
def GhostNetV2_130(**kwargs):
    return GhostNetV2(width=1.3, **kwargs)


@_variant("ghostnetv2_160", 1.6)
def GhostNetV2_160(**kwargs):
    return GhostNetV2(width=1.6, **kwargs)


@_variant("ghostnetv3_050", 0.5)
def GhostNetV3_050(**kwargs):
    return GhostNetV3(width=0.5, **kwargs)


@_variant("ghostnetv3_100", 1.0)
def GhostNetV3_100(**kwargs):
    return GhostNetV3(width=1.0, **kwargs)


@_variant("ghostnetv3_130", 1.3)
def GhostNetV3_130(**kwargs):
    return GhostNetV3(width=1.3, **kwargs)


@_variant("ghostnetv3_160", 1.6)
def GhostNetV3_160(**kwargs):
    return GhostNetV3(width=1.6, **kwargs)


def convertible_models():
    """Registry names of the models whose checkpoints convert: the ImageNet GhostNets (from
    PyTorch, or PaddlePaddle for the "_paddle" ones)."""
    return list(_COUNTS)


def _design_of(model_name):
    return "paddleclas" if model_name.endswith(DESIGNS["paddleclas"].suffix) else "official"


def convert_checkpoint(source, model_name, output=None, checkpoint_key="auto", tag="imagenet"):
    """Convert the checkpoint `source` of the registry model `model_name` (a PyTorch file of
    the official releases or timm for "ghostnet_100", a PaddleClas `.pdparams` file for
    "ghostnet_100_paddle") to a Keras `.weights.h5` file at `output`, written atomically; by
    default the cache file that `weights=tag` reads. `checkpoint_key` as in
    `ghostnet_tf.weights.read_state_dict`. Returns the model."""
    entry = registry.model_entry(model_name, argument="model_name")
    if model_name not in _COUNTS:
        raise ArgumentError("model_name", f"{model_name} has no published checkpoint to "
                                          f"convert; choose one of: "
                                          f"{', '.join(convertible_models())}.")
    output = os.fspath(output or weights_lib.pretrained_weights_path(model_name, tag))
    if not output.endswith(weights_lib.WEIGHTS_SUFFIX):
        raise ArgumentError("output", f"{output}: Keras weights files must end in "
                                      f"{weights_lib.WEIGHTS_SUFFIX}.")
    architecture = _architecture(entry.width, _COUNTS[model_name][0], _design_of(model_name))
    try:
        return weights_lib.save_converted(source, architecture, output, checkpoint_key)
    except weights_lib.DeployFormCheckpoint as error:
        raise ArgumentError("source", str(error)) from None
