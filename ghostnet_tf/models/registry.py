"""The model registry: one entry per model name, the one place for a model's facts.

In the spirit of timm's per-model `_cfg` and keras-hub's presets: an entry holds the model's
constructor, its family, the options it takes, its default input, the evaluation transform and
normalization it expects, its known weight files and its published size. The trainer, the data
pipelines' evaluation transform, eval.py, predict.py, export.py, the profiler and the
visualizer read entries instead of guessing from a name. Model modules register their own
entries (`register`) next to their stage tables; `ghostnet_tf.models` imports them all.

Pure Python: no keras, no TensorFlow.
"""
import dataclasses
import os
from typing import Callable, Optional

from ghostnet_tf.checks import ArgumentError

# The options a model may take besides input_shape and classes, as `get_model` keywords and
# as the trainer's model.<option> keys.
OPTIONS = ("ratio", "dw_size", "version", "dropout", "weights", "include_preprocessing")

# The ImageNet convention (torchvision, timm, the official GhostNet release): RGB in [0, 1]
# normalized with these, evaluated at 224 after resizing the short side to 256 (crop 0.875).
IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)
IMAGENET_INPUT_SIZE = 224


@dataclasses.dataclass(frozen=True)
class EvalTransform:
    """How an evaluation image is prepared: resize the short side to size / crop_pct with
    `interpolation` (antialiased), then center-crop to size. crop_pct 1.0 resizes the whole
    image to the input size, which is the plain image for datasets already at that size."""
    interpolation: str = "bilinear"  # "bilinear" or "bicubic"
    crop_pct: float = 0.875

    def overridden(self, interpolation=None, crop_pct=None):
        """This transform with the given fields replaced (None keeps a field)."""
        if interpolation is not None and interpolation not in INTERPOLATIONS:
            raise ArgumentError("interpolation", f"must be one of {INTERPOLATIONS}, got "
                                                 f"{interpolation!r}.")
        if crop_pct is not None and not 0 < crop_pct <= 1:
            raise ArgumentError("crop_pct", f"must be in (0, 1], got {crop_pct!r}.")
        return EvalTransform(interpolation or self.interpolation, crop_pct or self.crop_pct)


INTERPOLATIONS = ("bilinear", "bicubic")
# Images for which no model is known (an export or a foreign .keras file) of at least
# SMALL_IMAGE_SIZE pixels get the ImageNet transform; smaller ones (CIFAR, MNIST) are seen whole.
DEFAULT_EVAL_TRANSFORM = EvalTransform("bilinear", 0.875)
PLAIN_EVAL_TRANSFORM = EvalTransform("bilinear", 1.0)
SMALL_IMAGE_SIZE = 64


@dataclasses.dataclass(frozen=True)
class PublishedWeights:
    """A released checkpoint, the Keras file it converts to, and its published accuracy."""
    sources: tuple  # file names of the official release and of timm that convert to it
    top1: float  # ImageNet top-1 (%) as published for those weights
    measured_with: EvalTransform  # the evaluation transform of that top-1
    measured_by: str  # who measured it, and where it is written


@dataclasses.dataclass(frozen=True)
class ModelEntry:
    name: str
    constructor: Callable  # (**options, input_shape=..., classes=...) -> keras.Model
    family: str  # "ghostnet" (ImageNet), "cifar_resnet", "cifar_vgg" (and their ghost_ forms)
    options: tuple  # which of OPTIONS the constructor takes
    input_shape: tuple  # default (height, width, channels)
    input_channels: Optional[int]  # channels the model needs; None: any (grayscale too)
    min_input_size: int  # smallest height and width
    eval_transform: EvalTransform
    mean: tuple  # the normalization inside the model (include_preprocessing), in [0, 1] units
    std: tuple
    classes: int  # default number of classes
    params: int  # trainable parameters with `classes` classes, as PyTorch counts them
    macs: int  # multiply-accumulates of one image at `input_shape`
    weights: dict = dataclasses.field(default_factory=dict)  # tag -> PublishedWeights
    width: Optional[float] = None  # the width multiplier of a family built at several
    description: str = ""
    # Models trained with re-parameterizable branches (GhostNetV3): `params` and `macs` are of
    # the train form the entry builds, these of the folded form that `reparameterize` makes.
    deploy_params: Optional[int] = None
    deploy_macs: Optional[int] = None

    def build(self, **kwargs):
        """The model, with `kwargs` (options, input_shape, classes, ...)."""
        return self.constructor(**kwargs)


_REGISTRY = {}


def register(entry):
    """Add `entry` to the registry (model modules call this for each of their models)."""
    if entry.name in _REGISTRY:
        raise ValueError(f"Model {entry.name!r} is registered twice.")
    unknown = set(entry.options) - set(OPTIONS)
    if unknown:
        raise ValueError(f"Model {entry.name!r} declares unknown options {sorted(unknown)}.")
    _REGISTRY[entry.name] = entry
    return entry


def list_models(family=None):
    """The registered model names, in registration order (optionally of one family)."""
    return [name for name, entry in _REGISTRY.items()
            if family is None or entry.family == family]


def model_entry(name, argument="name"):
    """The `ModelEntry` of `name`; an error naming `argument` and the known names otherwise."""
    if name not in _REGISTRY:
        raise ArgumentError(argument, f"{name!r} is not a model of the library; choose one "
                                      f"of: {', '.join(_REGISTRY)}.")
    return _REGISTRY[name]


def find_entry(model_name):
    """The entry of a model called `model_name` (a built model keeps its registry name), or
    None for a model the registry does not know."""
    return _REGISTRY.get(model_name)


def get_model(name, **kwargs):
    """Build the model registered as `name`, passing on `kwargs` (see `model_entry(name)`)."""
    return model_entry(name).build(**kwargs)


def eval_transform_for(model_name=None, input_size=None):
    """The evaluation transform of a model: its entry's when the registry knows it, else the
    plain image for inputs under SMALL_IMAGE_SIZE and the ImageNet transform above."""
    entry = find_entry(model_name)
    if entry is not None:
        return entry.eval_transform
    if input_size is not None and input_size < SMALL_IMAGE_SIZE:
        return PLAIN_EVAL_TRANSFORM
    return DEFAULT_EVAL_TRANSFORM


def default_input_shape(model_name, input_shape):
    """`input_shape` with unknown sizes (a model that takes any size) set to the entry's
    default input size, or ImageNet's 224 for a model the registry does not know."""
    entry = find_entry(model_name)
    size = entry.input_shape[0] if entry else IMAGENET_INPUT_SIZE
    return tuple(size if dim is None else dim for dim in input_shape[:2]) + \
        tuple(input_shape[2:])


def keras_cache_dir():
    """$KERAS_HOME/models (KERAS_HOME defaults to ~/.keras): where converted weights go."""
    home = os.environ.get("KERAS_HOME") or os.path.join(os.path.expanduser("~"), ".keras")
    return os.path.join(home, "models")


def pretrained_weights_path(name, tag="imagenet"):
    """Where `weights=tag` of model `name` is read from, and where ghostnet-convert-weights
    writes it by default: $KERAS_HOME/models/<name>_<tag>.weights.h5. Any converted
    checkpoint of the architecture may be put there, published or not."""
    return os.path.join(keras_cache_dir(), f"{name}_{tag}.weights.h5")
