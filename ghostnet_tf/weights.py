"""Names of GhostNet's Keras variables in the official PyTorch state_dict (and timm's).

The official release (`ghostnet_pytorch/ghostnet.py`) and timm's `ghostnet_050/100/130` share
their keys. Every Keras variable of `GhostNet` has exactly one official key; BN's
`num_batches_tracked` counters have no Keras counterpart. Keras and numpy only.
"""
import re

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
}
# Keras variable name -> official parameter or buffer name.
VARIABLE_TO_PARAMETER = {
    "kernel": "weight",
    "bias": "bias",
    "gamma": "weight",
    "beta": "bias",
    "moving_mean": "running_mean",
    "moving_variance": "running_var",
}
_BLOCK = re.compile(r"^blocks_(\d+)_(\d+)$")
_LAST_STAGE = {"blocks_9_conv": "blocks.9.0.conv", "blocks_9_bn": "blocks.9.0.bn1"}


def official_key(variable_path):
    """The official state_dict key of a GhostNet variable, e.g.
    "blocks_3_0/ghost1/primary_bn/moving_mean" -> "blocks.3.0.ghost1.primary_conv.1.running_mean".
    """
    *layers, variable = variable_path.split("/")
    if variable not in VARIABLE_TO_PARAMETER or not layers:
        raise ValueError(f"{variable_path!r} is not a GhostNet variable path.")
    top = layers[0]
    block = _BLOCK.match(top)
    if block:
        modules = [f"blocks.{block[1]}.{block[2]}"]
    elif top in _LAST_STAGE:
        modules = [_LAST_STAGE[top]]
    else:
        modules = [top]  # conv_stem, bn1, conv_head, classifier
    modules += [SUBLAYER_TO_MODULE.get(name, name) for name in layers[1:]]
    return ".".join(modules + [VARIABLE_TO_PARAMETER[variable]])


def official_keys(model):
    """{official key: Keras variable} for every variable of a GhostNet model."""
    keys = {}
    for variable in model.weights:
        key = official_key(variable.path)
        if key in keys:
            raise ValueError(f"Two variables map to {key!r}: {keys[key].path} and {variable.path}.")
        keys[key] = variable
    return keys
