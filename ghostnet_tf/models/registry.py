"""The model registry: one entry per model name, the one place for a model's facts.

In the spirit of timm's per-model `_cfg` and keras-hub's presets: an entry holds the model's
constructor, its family, the options it takes, its default input, the evaluation transform it
expects, its published weights and its size. Everything else has its own home: the
weight sources and the cache in `ghostnet_tf.weights`, the evaluation transform in
`ghostnet_tf.data.eval_transform`, ImageNet's constants in `ghostnet_tf.imagenet`. The trainer, the data
pipelines' evaluation transform, eval.py, predict.py, export.py, the profiler and the
visualizer read entries instead of guessing from a name. Model modules register each
constructor with the `register_model` decorator, as timm's `@register_model`, which also
writes the constructor's docstring from its entry; `ghostnet_tf.models` imports them all.

Pure Python: no keras, no TensorFlow.
"""
import dataclasses
from typing import Callable, Optional

from ghostnet_tf.checks import ArgumentError
from ghostnet_tf.data.eval_transform import (DEFAULT_EVAL_TRANSFORM, PLAIN_EVAL_TRANSFORM,
                                             SMALL_IMAGE_SIZE, EvalTransform)
from ghostnet_tf.imagenet import IMAGENET_INPUT_SIZE

# The options a model may take besides input_shape and classes, as `get_model` keywords and
# as the trainer's model.<option> keys.
OPTIONS = ("ratio", "dw_size", "version", "dropout", "weights", "include_preprocessing")

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
    # tag -> PublishedWeights (ghostnet_tf.weights)
    weights: dict = dataclasses.field(default_factory=dict)
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


def constructors():
    """{function name: constructor} of every registered model, e.g. "GhostNet100"."""
    return {entry.constructor.__name__: entry.constructor for entry in _REGISTRY.values()}


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
