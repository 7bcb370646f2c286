"""Checkpoints converted by key name, whichever framework wrote them.

A `CheckpointFormat` says how to read a framework's files, which key each Keras variable
has in them and how a parameter's layout becomes Keras': PyTorch's (the official releases
and timm, `official.py`) and PaddlePaddle's (PaddleClas, `paddle.py`). The file's suffix
says its format; the architecture says which one it converts from. The rules are the same
for both: every key used exactly once, every shape checked, the file written whole.
"""
import dataclasses
import os
from typing import Callable

from ghostnet_tf.atomic import write_atomically
from ghostnet_tf.checks import ArgumentError, first_line
from ghostnet_tf.weights import official, paddle


@dataclasses.dataclass(frozen=True)
class CheckpointFormat:
    name: str
    description: str  # for error messages: "a PyTorch checkpoint (the official releases, timm)"
    suffixes: tuple
    read: Callable  # (path, checkpoint_key) -> {key: float32 array}
    keys: Callable  # model -> {key: Keras variable}
    layout: Callable  # (array, Keras shape, depthwise) -> array in Keras' layout
    classifier_bias: str  # the key whose length is the number of classes


CHECKPOINT_FORMATS = {
    "pytorch": CheckpointFormat(
        "pytorch", "a PyTorch checkpoint (the official releases, timm)",
        official.PYTORCH_SUFFIXES, official.read_state_dict, official.official_keys,
        official.to_keras_layout, "classifier.bias"),
    "paddle": CheckpointFormat(
        "paddle", "a PaddlePaddle checkpoint (PaddleClas)", (paddle.PADDLE_SUFFIX,),
        paddle.read_pdparams, paddle.paddle_keys,
        paddle.paddle_layout, "fc_1.bias"),
}
# Every suffix a checkpoint may have, of any format.
CHECKPOINT_SUFFIXES = tuple(suffix for checkpoint_format in CHECKPOINT_FORMATS.values()
                            for suffix in checkpoint_format.suffixes)


def format_of_file(path):
    """The `CheckpointFormat` of the file `path`, by its suffix."""
    path = os.fspath(path)
    for checkpoint_format in CHECKPOINT_FORMATS.values():
        if path.endswith(checkpoint_format.suffixes):
            return checkpoint_format
    raise ArgumentError("source", f"{path}: expected a checkpoint file ("
                                  f"{', '.join(CHECKPOINT_SUFFIXES)}).")


def load_state_dict(model, state_dict, source="the checkpoint", checkpoint_format="pytorch"):
    """Assign a state_dict of `checkpoint_format` to `model` by key names: every key used
    exactly once and every shape checked, or a ValueError listing all that does not match."""
    form = CHECKPOINT_FORMATS[checkpoint_format]
    variables = form.keys(model)
    missing = sorted(set(variables) - set(state_dict))
    unused = sorted(set(state_dict) - set(variables))
    converted, wrong_shapes = {}, []
    for key, variable in variables.items():
        if key not in state_dict:
            continue
        array = form.layout(state_dict[key], tuple(variable.shape),
                            official.is_depthwise(variable.path))
        if tuple(array.shape) != tuple(variable.shape):
            wrong_shapes.append(f"{key}: {tuple(state_dict[key].shape)} in {source}, "
                                f"Keras {variable.path} needs {tuple(variable.shape)}")
        converted[key] = array
    problems = []
    if wrong_shapes:
        problems.append(f"{len(wrong_shapes)} shape(s) differ (another width or number of "
                        "classes?):\n  " + "\n  ".join(wrong_shapes[:20]))
    if missing:
        problems.append(f"{len(missing)} key(s) of {model.name} missing from {source}:\n  "
                        + "\n  ".join(missing[:20]))
    if unused:
        problems.append(f"{len(unused)} key(s) of {source} that {model.name} has no place "
                        "for:\n  " + "\n  ".join(unused[:20]))
    if problems:
        raise ValueError(f"{source} does not fit {model.name}:\n" + "\n".join(problems))
    for key, variable in variables.items():
        variable.assign(converted[key])


def mismatch_summary(error):
    """`load_state_dict`'s report (a title, then indented lists) on one line: each kind of
    mismatch with its first example."""
    lines = str(error).splitlines()
    kinds = [f"{line.rstrip(':')} (e.g. {example.strip()})"
             for line, example in zip(lines[1:], lines[2:])
             if not line.startswith(" ") and example.startswith(" ")]
    return "; ".join(kinds) + "." if kinds else first_line(error)


class DeployFormCheckpoint(ValueError):
    """A GhostNetV3 checkpoint in its folded form, where the train form is expected."""


def save_converted(source, architecture, output, checkpoint_key="auto"):
    """Read the checkpoint `source`, load it by key name into `architecture.build(classes)`
    (a GhostNet of the checkpoint's classes), write the weights to `output` (`.weights.h5`,
    atomically) and return the model. A file of another format than the architecture's is
    refused (ArgumentError); a model that folds (GhostNetV3) takes the train form, a folded
    checkpoint raising DeployFormCheckpoint; one that does not fit raises
    `load_state_dict`'s ValueError."""
    form = format_of_file(source)
    expected = CHECKPOINT_FORMATS[architecture.checkpoint_format]
    if form is not expected:
        raise ArgumentError("source", f"{os.fspath(source)} is {form.description}; "
                                      f"{architecture.name} converts {expected.description} "
                                      f"({', '.join(expected.suffixes)}).")
    state_dict = form.read(source, checkpoint_key)
    if architecture.fold is not None and any(key.endswith("primary_conv.0.bias")
                                             for key in state_dict):
        raise DeployFormCheckpoint(
            f"{os.fspath(source)} holds GhostNetV3's deploy (folded) form; convert the train "
            "form (keys with _rpr_), which the official release and timm publish.")
    bias = state_dict.get(form.classifier_bias)
    if bias is None:
        raise ValueError(f"{os.fspath(source)} has no {form.classifier_bias}: is it a "
                         "GhostNet with its classifier?")
    model = architecture.build(int(bias.shape[0]))
    load_state_dict(model, state_dict, os.fspath(source), form.name)
    os.makedirs(os.path.dirname(os.path.abspath(output)), exist_ok=True)
    write_atomically(output, model.save_weights)
    return model
