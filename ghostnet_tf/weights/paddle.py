"""PaddleClas's GhostNet checkpoints (`.pdparams`), read without PaddlePaddle.

A `.pdparams` file is what `paddle.save(layer.state_dict())` writes: a Python pickle of a dict
{structured name: numpy array} (and a "StructuredToParameterName@@" dict of names).
Unpickling runs whatever callable a file names, so these files are read by an unpickler that
admits the few numpy names that rebuild an array and nothing else: a file naming anything
more (os.system, a paddle class) is refused before any of it runs. This is safer than loading
with paddle (`paddle.load` unpickles freely) and needs no 200 MB framework.

Keys are PaddleClas's module paths ("_ghostbottleneck_3.se_block.squeeze.weight"). Its
convolutions keep PyTorch's (out, in, kh, kw) layout; its fully connected layers (the
squeeze-excite's and the classifier) hold (in, out), Keras' own layout.
"""
import codecs
import io
import os
import pickle
import re

import numpy as np

from ghostnet_tf.checks import ArgumentError, first_line
from ghostnet_tf.weights.official import checked_state_dict, to_keras_layout

PADDLE_SUFFIX = ".pdparams"
# The names numpy's pickles use to rebuild an array (numpy 1's "numpy.core" and numpy 2's
# "numpy._core" spellings), the ordered dict of older paddle versions, and the str-to-bytes
# encoding that pickle protocol 2 (older paddle's) writes an array's bytes with.
_RECONSTRUCT = np.ndarray.__reduce__(np.zeros(1))[0]
_ALLOWED = {
    ("numpy", "ndarray"): np.ndarray,
    ("numpy", "dtype"): np.dtype,
    ("numpy.core.multiarray", "_reconstruct"): _RECONSTRUCT,
    ("numpy._core.multiarray", "_reconstruct"): _RECONSTRUCT,
    ("collections", "OrderedDict"): dict,
    ("_codecs", "encode"): codecs.encode,
}
# paddle.save's table of parameter names, not a weight.
_NAME_TABLE = "StructuredToParameterName@@"


class _ArraysOnly(pickle.Unpickler):
    def find_class(self, module, name):
        if (module, name) not in _ALLOWED:
            raise pickle.UnpicklingError(f"it names {module}.{name}, which a .pdparams file of "
                                         "weights never needs (refused, not run)")
        return _ALLOWED[(module, name)]


def read_pdparams(path, checkpoint_key="auto"):
    """{key: float32 numpy array} of a PaddlePaddle `.pdparams` state_dict, unpickled with
    numpy's array names only (see the module's docstring). A `.pdparams` file holds one set
    of weights: `checkpoint_key` (PyTorch's training checkpoints' choice) must stay "auto"."""
    path = os.fspath(path)
    if checkpoint_key != "auto":
        raise ArgumentError("checkpoint_key", f"{checkpoint_key} picks weights of a PyTorch "
                                              f"training checkpoint; {path} is a .pdparams "
                                              "file, which holds one set: leave it at auto.")
    if not os.path.isfile(path):
        raise ArgumentError("source", f"{path}: no such file.")
    with open(path, "rb") as file:
        data = file.read()
    try:
        state = _ArraysOnly(io.BytesIO(data)).load()
    except Exception as error:  # pickle raises many kinds for damaged data
        raise ArgumentError("source", f"{path} is not a readable .pdparams file: "
                                      f"{first_line(error) or type(error).__name__}.") from None
    checked_state_dict(path, state).pop(_NAME_TABLE, None)
    arrays = {}
    for key, value in state.items():
        if not isinstance(value, np.ndarray) or value.dtype.kind not in "fiu":
            raise ArgumentError("source", f"{path}: {key!r} is a {type(value).__name__}, not "
                                          "an array of numbers.")
        arrays[key] = value.astype(np.float32)
    return arrays


# Keras layer or sublayer name -> PaddleClas module path. Each ConvBNLayer of PaddleClas is
# a convolution ("_conv") and a batch norm ("_batch_norm").
_MODULES = {
    "conv_stem": "conv1._conv", "bn1": "conv1._batch_norm",
    "ghost1": "ghost_module_1", "ghost2": "ghost_module_2",
    "primary_conv": "primary_conv._conv", "primary_bn": "primary_conv._batch_norm",
    "cheap_conv": "cheap_operation._conv", "cheap_bn": "cheap_operation._batch_norm",
    "conv_dw": "depthwise_conv._conv", "bn_dw": "depthwise_conv._batch_norm",
    "se": "se_block", "conv_reduce": "squeeze", "conv_expand": "excitation",
    "shortcut_dw": "shortcut_depthwise._conv",
    "shortcut_dw_bn": "shortcut_depthwise._batch_norm",
    "shortcut_conv": "shortcut_conv._conv", "shortcut_bn": "shortcut_conv._batch_norm",
    "conv_head": "fc_0._conv", "head_bn": "fc_0._batch_norm", "classifier": "fc_1",
}
# The 1x1 ConvBNLayer after the bottlenecks ("blocks_9_conv", "blocks_9_bn" in Keras).
_LAST_STAGE = {"conv": "conv_last._conv", "bn": "conv_last._batch_norm"}
_VARIABLES = {"kernel": "weight", "bias": "bias", "gamma": "weight", "beta": "bias",
              "moving_mean": "_mean", "moving_variance": "_variance"}
_BLOCK = re.compile(r"^blocks_(\d+)_(\d+)$")
_LAST = re.compile(r"^blocks_\d+_(conv|bn)$")


def paddle_keys(model):
    """{PaddleClas key: Keras variable} for every variable of a GhostNet in PaddleClas's
    design. PaddleClas numbers the bottlenecks 0..15 through the stages; Keras names them
    blocks_<stage>_<block>."""
    blocks = sorted({tuple(map(int, match.groups())) for match in
                     (_BLOCK.match(v.path.split("/")[0]) for v in model.weights) if match})
    numbers = {f"blocks_{stage}_{block}": index for index, (stage, block) in enumerate(blocks)}
    keys = {}
    for variable in model.weights:
        *layers, name = variable.path.split("/")
        top, last = layers[0], _LAST.match(layers[0])
        if top in numbers:
            modules = [f"_ghostbottleneck_{numbers[top]}"]
        elif last:
            modules = [_LAST_STAGE[last[1]]]
        elif top in _MODULES:
            modules = [_MODULES[top]]
        else:
            raise ValueError(f"{variable.path} has no place in PaddleClas's GhostNet.")
        modules += [_MODULES[layer] for layer in layers[1:]]
        keys[".".join(modules + [_VARIABLES[name]])] = variable
    return keys


def paddle_layout(array, keras_shape, depthwise=False):
    """A PaddleClas parameter in the layout of a Keras variable of `keras_shape`: its
    convolutions are PyTorch's (`to_keras_layout`), its fully connected (in, out) matrices
    Keras' own, made 1x1 convolution kernels for the squeeze-excite."""
    if array.ndim == 2 and tuple(keras_shape[-2:]) == array.shape:
        return array.reshape(keras_shape)
    return to_keras_layout(array, keras_shape, depthwise)
