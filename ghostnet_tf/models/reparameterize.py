"""`reparameterize`: the deploy form of a model with re-parameterizable layers (GhostNetV3).

A layer is in train form when its config has `deploy: False` and it holds `RepConv` layers
(GhostNetV3's `GhostModule`s and `GhostBottleneck`s, `RepConv` itself). Its deploy form is
the same layer built with `deploy: True`, whose convolutions get the folded kernels and
biases (`RepConv.folded`); every other variable is copied.
"""
import keras

from ghostnet_tf.checks import ArgumentError
from ghostnet_tf.compat import sublayers
from ghostnet_tf.layers import RepConv
from ghostnet_tf.models.transfer import clone_with_weights, copy_weights, from_config


def _rep_convs(layer):
    return [inner for inner in [layer] + sublayers(layer, recursive=True)
            if isinstance(inner, RepConv)]


def in_train_form(layer):
    """Whether `layer` has re-parameterizable branches still to fold."""
    return (isinstance(layer, keras.layers.Layer) and not isinstance(layer, keras.Model)
            and layer.get_config().get("deploy") is False and bool(_rep_convs(layer)))


def has_train_form_layers(model):
    """Whether any layer of `model` (nested models included) is `in_train_form`."""
    return any(in_train_form(layer) for layer in sublayers(model, recursive=True))


def fold_layer(source, target):
    """Give `target`, the deploy form of the train-form layer `source`, its folded weights."""
    source_reps, target_reps = _rep_convs(source), _rep_convs(target)
    if [r.name for r in source_reps] != [r.name for r in target_reps]:
        raise ValueError(f"{target.name} is not the deploy form of {source.name}.")
    folded_variables = {id(v) for r in source_reps + target_reps for v in r.weights}
    for rep, deployed in zip(source_reps, target_reps):
        kernel, bias = rep.folded()
        deployed.conv.kernel.assign(kernel)
        deployed.conv.bias.assign(bias)
    # Every other variable (attention branch, SE, shortcut, ...) in tracking order.
    kept = [v for v in source.weights if id(v) not in folded_variables]
    targets = [v for v in target.weights if id(v) not in folded_variables]
    if [tuple(v.shape) for v in kept] != [tuple(v.shape) for v in targets]:
        raise ValueError(f"{target.name} is not the deploy form of {source.name}.")
    for source_variable, target_variable in zip(kept, targets):
        target_variable.assign(source_variable)


def _fold_or_copy(original, copy):
    """Give `copy` (the deploy form of `original`, or the same layer) `original`'s weights."""
    if in_train_form(original):
        fold_layer(original, copy)
    else:
        copy_weights(original, copy)


def fold_weights(source, target):
    """Copy the weights of the train-form model `source` into its deploy form `target`
    (same layer names), folding every re-parameterizable layer."""
    for layer in target.layers:
        _fold_or_copy(source.get_layer(layer.name), layer)


def reparameterize(model):
    """Return the deploy-form copy of `model`: every re-parameterizable layer (GhostNetV3,
    `ghostify(model, version=3)`, any `RepConv`) with its branches folded into one
    convolution with bias, the same function at inference (up to float rounding) with
    GhostNetV2's operations. `model` is not changed. Functional and Sequential models
    (nested ones too).

    Raises ArgumentError when `model` has no layer to fold, rather than returning a copy
    that is silently the same model.
    """
    if not isinstance(model, keras.Model) or getattr(model, "inputs", None) is None:
        raise ArgumentError("model", f"must be a functional or Sequential keras.Model, got "
                                     f"{type(model).__name__}.")
    if not has_train_form_layers(model):
        raise ArgumentError("model", f"{model.name} has no re-parameterizable layer in train "
                                     "form (GhostNetV3's, ghostify(version=3)'s or a RepConv "
                                     "with deploy=False): nothing to fold.")
    def deploy_layer(layer):
        return from_config(layer, deploy=True) if in_train_form(layer) else from_config(layer)

    return clone_with_weights(model, deploy_layer, _fold_or_copy, recursive=True)


def deploy_form(model):
    """The form of `model` that runs at inference: `reparameterize(model)` when it has layers
    to fold, else `model` itself (for code that takes any model, such as export)."""
    return reparameterize(model) if has_train_form_layers(model) else model
