"""GhostNet's weights in the official PyTorch state_dict (and timm's): their keys, their
layout and the reading of PyTorch's files (`convert.py` converts them by these keys).

The official releases (`ghostnet_pytorch/ghostnet.py`, GhostNetV2's and GhostNetV3's) and
timm's `ghostnet*` models share their keys (timm names the batch norms of GhostNetV3's
branches `bn1`, the official code `bn`). Every Keras variable has exactly one official key;
BN's `num_batches_tracked` counters have no Keras counterpart. Reading `.safetensors` needs only
numpy (the `safetensors` package); `.pth` and `.bin` files are pickles that need torch.
"""
import os
import re

import numpy as np

from ghostnet_tf.checks import ArgumentError, first_line

# PyTorch checkpoints of the official releases and timm: .safetensors (read with numpy), the
# rest pickles (read with torch).
PYTORCH_SUFFIXES = (".safetensors", ".pth", ".pth.tar", ".pt", ".bin")

# Keras sublayer name -> official module path.
SUBLAYER_TO_MODULE = {
    "primary_conv": "primary_conv.0",
    "primary_bn": "primary_conv.1",
    "cheap_conv": "cheap_operation.0",
    "cheap_bn": "cheap_operation.1",
    "shortcut_dw": "shortcut.0",
    "shortcut_dw_bn": "shortcut.1",
    "shortcut_conv": "shortcut.2",
    "shortcut_bn": "shortcut.3",
    # GhostNetV2's DFC attention branch (short_conv) of a Ghost module.
    "dfc_conv": "short_conv.0",
    "dfc_bn": "short_conv.1",
    "dfc_horizontal": "short_conv.2",
    "dfc_horizontal_bn": "short_conv.3",
    "dfc_vertical": "short_conv.4",
    "dfc_vertical_bn": "short_conv.5",
}
# GhostNetV3's RepConv layers: Keras name -> (official prefix of the train form's branches,
# official module of the deploy form's folded convolution).
REP_CONV_MODULES = {
    "primary_rep": ("primary_rpr", "primary_conv.0"),
    "cheap_rep": ("cheap_rpr", "cheap_operation.0"),
    "dw_rep": ("dw_rpr", "conv_dw"),
}
_REP_BRANCH = re.compile(r"^(conv|bn)_(\d+)$")
# Keras variable name -> official parameter or buffer name.
VARIABLE_TO_PARAMETER = {
    "kernel": "weight",
    "bias": "bias",
    "gamma": "weight",
    "beta": "bias",
    "moving_mean": "running_mean",
    "moving_variance": "running_var",
}
# Keras sublayers that are DepthwiseConv2D (grouped convolutions in PyTorch), and the RepConvs
# whose branches are.
DEPTHWISE_SUBLAYERS = ("cheap_conv", "conv_dw", "shortcut_dw", "dfc_horizontal", "dfc_vertical")
DEPTHWISE_REP_CONVS = ("cheap_rep", "dw_rep")
_BLOCK = re.compile(r"^blocks_(\d+)_(\d+)$")
# The 1x1 ConvBnAct after the bottlenecks (blocks.9.0): one Keras layer each for its conv
# ("blocks_9_conv") and BN ("blocks_9_bn").
_LAST_STAGE = re.compile(r"^blocks_(\d+)_(conv|bn)$")
_LAST_STAGE_MODULES = {"conv": "conv", "bn": "bn1"}


def official_key(variable_path):
    """The official state_dict key of a GhostNet variable, e.g.
    "blocks_3_0/ghost1/primary_bn/moving_mean" -> "blocks.3.0.ghost1.primary_conv.1.running_mean".
    """
    *layers, variable = variable_path.split("/")
    if variable not in VARIABLE_TO_PARAMETER or not layers:
        raise ArgumentError("variable_path", f"{variable_path!r} is not a GhostNet variable "
                                             "path.")
    top = layers[0]
    block, last_stage = _BLOCK.match(top), _LAST_STAGE.match(top)
    if block:
        modules = [f"blocks.{block[1]}.{block[2]}"]
    elif last_stage:
        modules = [f"blocks.{last_stage[1]}.0.{_LAST_STAGE_MODULES[last_stage[2]]}"]
    else:
        modules = [top]  # conv_stem, bn1, conv_head, classifier
    inner = layers[1:]
    if len(inner) >= 2 and inner[-2] in REP_CONV_MODULES:
        modules += [SUBLAYER_TO_MODULE.get(name, name) for name in inner[:-2]]
        modules.append(_rep_conv_module(*inner[-2:]))
    else:
        modules += [SUBLAYER_TO_MODULE.get(name, name) for name in inner]
    return ".".join(modules + [VARIABLE_TO_PARAMETER[variable]])


def _rep_conv_module(rep_conv, branch):
    """The official module of a RepConv's sublayer: "primary_rep", "bn_2" ->
    "primary_rpr_conv.2.bn"; "cheap_rep", "scale_conv" -> "cheap_rpr_scale.conv";
    "cheap_rep", "identity_bn" -> "cheap_rpr_skip"; "dw_rep", "conv" (deploy) -> "conv_dw"."""
    prefix, deployed = REP_CONV_MODULES[rep_conv]
    numbered = _REP_BRANCH.match(branch)
    if numbered:
        return f"{prefix}_conv.{numbered[2]}.{numbered[1]}"
    return {"conv": deployed, "scale_conv": f"{prefix}_scale.conv",
            "scale_bn": f"{prefix}_scale.bn", "identity_bn": f"{prefix}_skip"}[branch]


def official_keys(model):
    """{official key: Keras variable} for every variable of a GhostNet model."""
    keys = {}
    for variable in model.weights:
        key = official_key(variable.path)
        if key in keys:
            raise ValueError(f"Two variables map to {key!r}: {keys[key].path} and {variable.path}.")
        keys[key] = variable
    return keys


# The counters of PyTorch's BatchNorm, which Keras does not keep, and the buffers that the
# thop profiler leaves in modules it counted (timm drops keys with "total" for GhostNetV2).
_IGNORED_SUFFIXES = (".num_batches_tracked", ".total_ops", ".total_params")
_IGNORED_KEYS = ("total_ops", "total_params")
# Which weights of a training checkpoint ({"state_dict": ..., "state_dict_ema": ...}) to read.
# "auto" takes the EMA weights where the file has them: the official releases trained with
# --model-ema and evaluate, and publish figures for, the averaged weights (GhostNetV3's
# 77.1% is its state_dict_ema's; its state_dict gives 76.93%).
CHECKPOINT_KEYS = ("auto", "state_dict_ema", "state_dict")
# Prefixes that wrappers add to every key: DataParallel ("module.") and some trainers ("model.").
_WRAPPER_PREFIXES = ("module.", "model.")


def read_state_dict(path, checkpoint_key="auto"):
    """{key: float32 numpy array} of a PyTorch checkpoint: `.safetensors` (numpy only), or a
    `.pth`/`.pt`/`.bin`/`.pth.tar` pickle (needs torch). Nested checkpoints ({"state_dict":
    ...}, {"model": ...}) and DataParallel's "module." prefixes are unwrapped;
    `checkpoint_key` picks "state_dict_ema" or "state_dict" of a training checkpoint that has
    both ("auto": the EMA weights where present, see CHECKPOINT_KEYS; "state_dict" also takes
    a plain state_dict, timm's rule for the releases it converted)."""
    if checkpoint_key not in CHECKPOINT_KEYS:
        raise ArgumentError("checkpoint_key", f"must be one of {', '.join(CHECKPOINT_KEYS)}, "
                                              f"got {checkpoint_key!r}.")
    path = os.fspath(path)
    if not os.path.isfile(path):
        raise ArgumentError("source", f"{path}: no such file.")
    if path.endswith(".safetensors"):
        from safetensors.numpy import load_file
        try:
            state = load_file(path)
        except Exception as error:  # safetensors raises its own error types
            raise ArgumentError("source", f"{path} is not a readable .safetensors file: "
                                          f"{first_line(error)}") from None
    elif path.endswith(PYTORCH_SUFFIXES):
        state = _read_torch_pickle(path)
    else:
        raise ArgumentError("source", f"{path}: expected a .safetensors, .pth, .pt or .bin "
                                      "file.")
    wrappers = [name for name in ("state_dict_ema", "state_dict", "model")
                if isinstance(state.get(name), dict)]
    # "state_dict" asks for the trained (not averaged) weights: a plain state_dict is those.
    candidates = {"auto": wrappers, "state_dict_ema": ["state_dict_ema"],
                  "state_dict": [name for name in wrappers if name != "state_dict_ema"]
                  }[checkpoint_key]
    chosen = [name for name in candidates if name in wrappers]
    if not chosen and (wrappers or checkpoint_key == "state_dict_ema"):
        held = ", ".join(wrappers) or "a plain state_dict"
        raise ArgumentError("checkpoint_key", f"{checkpoint_key} is not in {path}, which holds "
                                              f"{held}.")
    if chosen:
        state = state[chosen[0]]
    for prefix in _WRAPPER_PREFIXES:
        if state and all(key.startswith(prefix) for key in state):
            state = {key[len(prefix):]: value for key, value in state.items()}
    return {_official_name(key): np.asarray(value, dtype=np.float32)
            for key, value in state.items()
            if not key.endswith(_IGNORED_SUFFIXES) and key not in _IGNORED_KEYS}


def _official_name(key):
    """timm's GhostNetV3 keys name each branch's batch norm "bn1"; the official code "bn"
    (the reverse of timm's checkpoint_filter_fn)."""
    if ".bn1." in key and (".ghost" in key or ".dw_rpr_" in key):
        return key.replace(".bn1.", ".bn.")
    return key


def checked_state_dict(path, state):
    """`state`, unpickled from `path`, if it is a dict; else the one-line error that the file
    holds no state_dict."""
    if not isinstance(state, dict):
        raise ArgumentError("source", f"{path} holds a {type(state).__name__}, not a "
                                      "state_dict.")
    return state


def _read_torch_pickle(path):
    try:
        import torch
    except ImportError:
        raise ArgumentError("source", f"{path}: .pth/.bin files are PyTorch pickles and need "
                                      'torch (pip install "ghostnet-tf[torch]"); .safetensors '
                                      "files do not.") from None
    try:
        state = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as error:  # torch raises many kinds for unreadable files
        raise ArgumentError("source", f"{path} is not a readable PyTorch checkpoint: "
                                      f"{first_line(error)}") from None
    checked_state_dict(path, state)
    return {key: value.float().numpy() if hasattr(value, "numpy") else value
            for key, value in state.items()}


def to_keras_layout(array, keras_shape, depthwise=False):
    """A PyTorch parameter in the layout of a Keras variable of `keras_shape`: convolution
    (out, in, kh, kw) -> (kh, kw, in, out); depthwise (in * m, 1, kh, kw) -> (kh, kw, in, m),
    output channel c * m + k of PyTorch's grouped convolution being Keras' (c, k); dense
    (out, in) -> (in, out). A parameter that cannot fit comes back in the plain layout, for
    the caller's shape check to report."""
    if depthwise and array.ndim == 4 and len(keras_shape) == 4:
        channels, multiplier = keras_shape[2], keras_shape[3]
        if array.shape[:2] == (channels * multiplier, 1):
            return array.reshape(channels, multiplier, *array.shape[2:]).transpose(2, 3, 0, 1)
    if array.ndim == 4:
        return array.transpose(2, 3, 1, 0)
    if array.ndim == 2:
        return array.T
    return array


def is_depthwise(variable_path):
    *layers, variable = variable_path.split("/")
    return variable == "kernel" and (layers[-1] in DEPTHWISE_SUBLAYERS or (
        len(layers) >= 2 and layers[-2] in DEPTHWISE_REP_CONVS))
