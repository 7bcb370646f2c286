"""The model registry: one entry per model name, the one place for a model's facts.

In the spirit of timm's per-model `_cfg` and keras-hub's presets: an entry holds the model's
constructor, its family, the options it takes, its default input, the evaluation transform it
expects, its known weight files and its published size. The trainer, the data
pipelines' evaluation transform, eval.py, predict.py, export.py, the profiler and the
visualizer read entries instead of guessing from a name. Model modules register each
constructor with the `register_model` decorator, as timm's `@register_model`, which also
writes the constructor's docstring from its entry; `ghostnet_tf.models` imports them all.

Pure Python: no keras, no TensorFlow.
"""
import dataclasses
import os
from typing import Callable, Optional

from ghostnet_tf.checks import ArgumentError, check_crop_pct, check_interpolation

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
        if interpolation is not None:
            check_interpolation(interpolation)
        if crop_pct is not None:
            check_crop_pct(crop_pct)
        return EvalTransform(interpolation or self.interpolation, crop_pct or self.crop_pct)

# Images for which no model is known (an export or a foreign .keras file) of at least
# SMALL_IMAGE_SIZE pixels get the ImageNet transform; smaller ones (CIFAR, MNIST) are seen whole.
DEFAULT_EVAL_TRANSFORM = EvalTransform("bilinear", 0.875)
PLAIN_EVAL_TRANSFORM = EvalTransform("bilinear", 1.0)
SMALL_IMAGE_SIZE = 64


# Where published checkpoints are downloaded from: the Hugging Face hub (HF_ENDPOINT, as
# huggingface_hub reads it, for a mirror) and GitHub's releases (GHOSTNET_TF_RELEASES_URL, for a
# mirror of them). The tests point both at a server on 127.0.0.1.
HUB_ENDPOINT = "https://huggingface.co"
RELEASES_URL = "https://github.com"


def hub_endpoint():
    """The Hugging Face hub's address: HF_ENDPOINT where set, read at each call."""
    return (os.environ.get("HF_ENDPOINT") or HUB_ENDPOINT).rstrip("/")


@dataclasses.dataclass(frozen=True)
class WeightSource:
    """One place a checkpoint is published: a file of a Hugging Face hub repository
    (`hub_id`, `filename`) or a GitHub release asset (`release`: "owner/repo/releases/
    download/tag/file"). `checkpoint_key` says which weights of a training checkpoint to read
    (ghostnet_tf.weights.CHECKPOINT_KEYS); `sha256` is checked where the source publishes it
    (the hub publishes it for every large file, as its ETag)."""
    hub_id: Optional[str] = None
    filename: str = "model.safetensors"
    release: Optional[str] = None
    checkpoint_key: str = "auto"
    sha256: Optional[str] = None

    @property
    def url(self):
        if self.hub_id is not None:
            return f"{hub_endpoint()}/{self.hub_id}/resolve/main/{self.filename}"
        base = os.environ.get("GHOSTNET_TF_RELEASES_URL") or RELEASES_URL
        return f"{base.rstrip('/')}/{self.release}"

    @property
    def needs_torch(self):
        """PyTorch pickles (.pth, .pth.tar, .bin) need torch to read; .safetensors do not."""
        name = self.filename if self.hub_id is not None else self.release
        return not name.endswith(".safetensors")


@dataclasses.dataclass(frozen=True)
class PublishedWeights:
    """A released set of weights: where it is published (the same weights at each source,
    tried in order), and its published accuracy."""
    sources: tuple  # WeightSource, the default first
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
    eval_transform: EvalTransform
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

    @property
    def reparameterizable(self):
        """Whether the model trains with branches that `reparameterize` folds (GhostNetV3)."""
        return self.deploy_params is not None

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


def register_model(name, builder, **fields):
    """Decorator: register the decorated constructor as model `name`, with the other
    `ModelEntry` fields, and write its entry into its docstring. `builder` names the
    function whose arguments it takes; None when its own docstring gives them, which the
    entry's lines then follow."""
    def decorate(constructor):
        entry = register(ModelEntry(name=name, constructor=constructor, **fields))
        facts = entry_docstring(entry, builder)
        constructor.__doc__ = facts if builder else f"{constructor.__doc__}\n\n{facts}"
        return constructor
    return decorate


def entry_docstring(entry, builder=None):
    """A constructor's docstring, from its registry entry (keras.applications' template)."""
    height, width, _ = entry.input_shape
    lines = [f"{entry.description}.", ""] if builder else []
    lines += [f"`{entry.name}` in the registry: {entry.params:,} trainable parameters and "
             f"{entry.macs / 1e6:.2f}M MACs at {height}x{width} with {entry.classes} classes"]
    if entry.reparameterizable:
        lines[-1] += (f" in train form; folded by `reparameterize`, {entry.deploy_params:,} "
                      f"parameters and {entry.deploy_macs / 1e6:.2f}M MACs")
    lines[-1] += "."
    for tag, published in entry.weights.items():
        lines.append(f'`weights="{tag}"`: {published.top1}% top-1 ({published.measured_by}).')
    if builder is not None:
        lines += ["", f"Takes the keyword arguments of `{builder}`"
                      f"{'' if entry.width is None else ' but `width`'}; returns a "
                      "`keras.Model`."]
    return "\n".join(lines)


def list_models(family=None, pretrained=False):
    """The registered model names, in registration order (optionally of one family, or
    only those with published weights, as timm's `list_models(pretrained=True)`)."""
    return [name for name, entry in _REGISTRY.items()
            if (family is None or entry.family == family)
            and (not pretrained or entry.weights)]


def models_table(cache=False):
    """The registered models as a Markdown table (docs/models.md; `ghostnet-profile --list`
    adds `cache=True`): name, family, input, trainable params and MACs (of the folded form as
    well, for models that `reparameterize` folds), and the published weights with their
    top-1, each marked "cached" when its converted file is in the cache (`cache=True`)."""
    lines = ["| name | family | input | params | MACs | folded params | folded MACs | "
             "weights (top-1) |",
             "| --- | --- | --- | ---: | ---: | ---: | ---: | --- |"]
    for entry in _REGISTRY.values():
        folded = (f"{entry.deploy_params:,} | {entry.deploy_macs / 1e6:.2f}M"
                  if entry.reparameterizable else "- | -")
        weights = ", ".join(
            f"{tag} ({published.top1}%"
            f"{', cached' if cache and os.path.exists(pretrained_weights_path(entry.name, tag)) else ''})"
            for tag, published in entry.weights.items()) or "-"
        shape = "x".join(str(size) for size in entry.input_shape)
        lines.append(f"| `{entry.name}` | {entry.family} | {shape} | {entry.params:,} | "
                     f"{entry.macs / 1e6:.2f}M | {folded} | {weights} |")
    return "\n".join(lines)


def model_entry(name, argument="name"):
    """The `ModelEntry` of `name`; an error naming `argument` and the known names otherwise."""
    if name not in _REGISTRY:
        import difflib

        close = difflib.get_close_matches(str(name), _REGISTRY, n=1)
        hint = f"did you mean {close[0]!r}? " if close else ""
        raise ArgumentError(argument, f"{name!r} is not a model of the library; {hint}choose "
                                      f"one of: {', '.join(_REGISTRY)}.")
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
    """Where `weights=tag` of model `name` is cached: the download converts to this file,
    and ghostnet-convert-weights writes it by default: $KERAS_HOME/models/<name>_<tag>
    .weights.h5. Any converted checkpoint of the architecture may be put there, published or
    not; a file there is read without touching the network."""
    return os.path.join(keras_cache_dir(), f"{name}_{tag}.weights.h5")
