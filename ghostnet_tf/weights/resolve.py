"""Any `weights=` value, resolved and loaded into a model.

`weights_kind` is the one rule that says what a value names (a published tag, a `.keras`
file, a `.weights.h5` file or a PyTorch checkpoint): the model constructors, the trainer,
distillation and the recipe check all ask it. `load_weights` is what a model constructor
calls: it gets a `.weights.h5` file for the value (the cache or a download for a tag, a
conversion for a checkpoint) and loads it whole, or all but the classifier when the model
has no top or another number of classes (fine-tuning).
"""
import contextlib
import dataclasses
import os
import tempfile
from typing import Callable, Optional

from ghostnet_tf.checks import ArgumentError
from ghostnet_tf.weights.convert import CHECKPOINT_SUFFIXES

TAG, KERAS_FILE, WEIGHTS_FILE, CHECKPOINT = "tag", "keras", "weights_file", "checkpoint"
KERAS_SUFFIX, WEIGHTS_SUFFIX = ".keras", ".weights.h5"
EXPECTED = ('a published tag ("imagenet"), a .keras or .weights.h5 file, or a checkpoint: '
            "PyTorch's (.safetensors, .pth, .pth.tar, .pt, .bin) or PaddleClas's (.pdparams)")


def weights_kind(weights, argument="weights"):
    """What `weights` names: TAG (a published tag such as "imagenet"), KERAS_FILE (a whole
    model saved by Keras), WEIGHTS_FILE (a `.weights.h5` file) or CHECKPOINT (a checkpoint
    of the official releases, timm or PaddleClas). Decided by the name alone; an error
    naming `argument` for anything else."""
    value = os.fspath(weights) if isinstance(weights, os.PathLike) else weights
    if isinstance(value, str) and value:
        if value.endswith(KERAS_SUFFIX):
            return KERAS_FILE
        if value.endswith(WEIGHTS_SUFFIX):
            return WEIGHTS_FILE
        if value.endswith(CHECKPOINT_SUFFIXES):
            return CHECKPOINT
        if "." not in value and "/" not in value and os.sep not in value:
            return TAG
    raise ArgumentError(argument, f"must be {EXPECTED}, got {weights!r}.")


@dataclasses.dataclass(frozen=True)
class Architecture:
    """What loading weights needs to know of a model family at one width."""
    name: str  # the registry name, which names the cache files ("ghostnet_100")
    # classes -> the model with a classifier of `classes`, taking normalized 224x224 images:
    # what checkpoints convert into, and what a backbone's weights are read through.
    build: Callable
    published: dict = dataclasses.field(default_factory=dict)  # tag -> PublishedWeights
    # For models trained with branches that fold (GhostNetV3): model -> its folded form.
    # Weights files hold the train form; a file of the folded form is named as such.
    fold: Optional[Callable] = None
    # The checkpoints it converts from: "pytorch" (the official releases, timm) or "paddle"
    # (PaddleClas's .pdparams), each with its own key names (CHECKPOINT_FORMATS).
    checkpoint_format: str = "pytorch"


def load_weights(model, weights, architecture, classes=None):
    """Load `weights` (see `weights_kind`) into `model`, of `architecture`. `classes` is the
    model's number of classes (None without a top): a file of another number loads all but
    the classifier."""
    with _weights_file(weights, architecture) as path:
        if classes is not None and _file_classes(path) == classes:
            _load_whole(model, path, architecture)
        else:  # fine-tuning: every layer but the classifier, by name
            full = architecture.build(_file_classes(path))
            _load_whole(full, path, architecture)
            copy_weights_by_name(full, model, skip=("classifier",))


@contextlib.contextmanager
def _weights_file(weights, architecture):
    """The path of a `.weights.h5` file for `weights`: a published tag's cache file
    (downloaded and converted on first use), the file itself, or a PyTorch checkpoint
    converted to a temporary file."""
    kind = weights_kind(weights)
    path = os.fspath(weights)
    if kind == TAG:
        from ghostnet_tf.weights.download import weights_file

        yield weights_file(architecture, path)
        return
    if kind == KERAS_FILE:
        raise ArgumentError("weights", f"{path} is a whole Keras model: load it with "
                                       "keras.saving.load_model, or start a training run "
                                       "from it (model.weights in a recipe).")
    if not os.path.exists(path):
        raise ArgumentError("weights", f"file {path!r} does not exist. Pass None, or "
                                       f"{EXPECTED}.")
    if kind == WEIGHTS_FILE:
        yield path
        return
    with tempfile.TemporaryDirectory(prefix="ghostnet_tf_weights_") as directory:
        yield _converted(path, architecture, os.path.join(directory, "w.weights.h5"))


def _converted(checkpoint, architecture, output):
    """Convert a checkpoint of `architecture` to `output`."""
    from ghostnet_tf.weights.convert import (DeployFormCheckpoint, mismatch_summary,
                                             save_converted)

    try:
        save_converted(checkpoint, architecture, output)
    except ArgumentError as error:  # an unreadable file: said of the user's argument
        raise ArgumentError("weights", error.problem) from None
    except DeployFormCheckpoint as error:
        raise ArgumentError("weights", str(error)) from None
    except ValueError as error:
        raise ArgumentError("weights", f"{checkpoint} does not fit {architecture.name}: "
                                       f"{mismatch_summary(error)} (ghostnet-convert-weights "
                                       "lists every mismatch).") from None
    return output


def _file_classes(path):
    """The number of classes of a GhostNet `.weights.h5` file (its classifier's columns)."""
    from ghostnet_tf.compat import weights_file_dense_units  # keras: imported on first use

    try:
        return weights_file_dense_units(path)  # GhostNet's one Dense is its classifier
    except (OSError, KeyError):
        raise ArgumentError("weights", f"file {path!r} is not the .weights.h5 file of a "
                                       "GhostNet with its classifier.") from None


def _load_whole(model, path, architecture):
    """`load_weights_file`; for a model whose branches fold, a file that fits the folded
    form instead is named as such."""
    try:
        load_weights_file(model, path)
    except ArgumentError:
        if architecture.fold is not None:
            try:
                load_weights_file(architecture.fold(model), path)
            except ArgumentError:
                pass
            else:
                raise ArgumentError(
                    "weights", f"file {path!r} holds the deploy (folded) form of "
                               f"{model.name}; it loads weights of the train form, as "
                               "ghostnet-convert-weights writes them (GhostNetV3(deploy="
                               "True, weights=...) folds them after loading).") from None
        raise


def load_weights_file(model, path):
    """Load a `.weights.h5` file into `model`, with errors that name the file."""
    path = os.fspath(path)
    if not os.path.exists(path):
        raise ArgumentError("weights", f"file {path!r} does not exist. Pass None, or the "
                                       "path of a `.weights.h5` file saved from the same "
                                       "architecture.")
    try:
        model.load_weights(path)
    except (ValueError, KeyError) as error:
        raise ArgumentError(
            "weights", f"file {path!r} does not fit {model.name} "
                       f"({model.count_params():,} parameters): it was saved from another "
                       f"architecture, width or number of classes. Keras said: {error}") \
            from error


def copy_weights_by_name(source, target, skip=()):
    """Set each layer of `target` that has weights to the weights of the `source` layer of the
    same name, where all their shapes agree. Returns the names of the layers copied."""
    sources = {layer.name: layer for layer in source.layers if layer.weights}
    copied = []
    for layer in target.layers:
        match = sources.get(layer.name)
        if not layer.weights or match is None or layer.name in skip:
            continue
        weights = match.get_weights()
        if [w.shape for w in weights] == [tuple(v.shape) for v in layer.weights]:
            layer.set_weights(weights)
            copied.append(layer.name)
    return copied
