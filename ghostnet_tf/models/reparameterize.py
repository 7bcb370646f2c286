"""`reparameterize`: the deploy form of a model with re-parameterizable layers (GhostNetV3).

A layer is in train form when its config has `deploy: False` and it holds `RepConv` layers
(GhostNetV3's `GhostModule`s and `GhostBottleneck`s, `RepConv` itself). Its deploy form is
the same layer built with `deploy: True`, whose convolutions get the folded kernels and
biases (`folded_kernel_and_bias`, which also folds a batch norm into any convolution, for the
export's rewrites); every other variable is copied.

A linear Ghost module whose output only a BatchNormalization reads (the modules of
`ghostify(version=3)`, before the model's own batch norms) loses its cheap convolution's
bias: the bias moves into that batch norm's moving mean, which it shifts exactly. The
primary convolution keeps its bias: the cheap convolution reads the primary maps with zero
padding, so that bias reaches the ghost maps as a map that differs at the borders, which no
per-channel shift can stand for.
"""
import keras
import numpy as np
from keras import ops

from ghostnet_tf.checks import ArgumentError
from ghostnet_tf.compat import consumers, sublayers
from ghostnet_tf.layers import GhostModule, RepConv
from ghostnet_tf.models.transfer import clone_with_weights, copy_weights, from_config


def batch_norm_inverse_sigma(bn):
    """1 / sqrt(moving variance + epsilon), one per channel, of batch norm `bn`."""
    return 1.0 / ops.sqrt(bn.moving_variance + bn.epsilon)


def batch_norm_scale_and_shift(bn):
    """(scale, shift), one per channel: batch norm `bn` at inference is x * scale + shift."""
    scale = bn.gamma * batch_norm_inverse_sigma(bn)
    return scale, bn.beta - bn.moving_mean * scale


def with_batch_norm(kernel, bias, bn, depthwise):
    """(kernel, bias) of a convolution followed by `bn` (or None) at inference, as one
    convolution. A depthwise kernel is (kh, kw, in, multiplier), its output channel
    c * multiplier + k being (c, k), the order of Keras and of PyTorch's groups."""
    if bn is None:
        return kernel, bias
    scale, shift = batch_norm_scale_and_shift(bn)
    kernel_scale = ops.reshape(scale, kernel.shape[2:]) if depthwise else scale
    return kernel * kernel_scale, bias * scale + shift


def folded_kernel_and_bias(conv, bn=None):
    """(kernel, bias) of `conv` (a Conv2D, DepthwiseConv2D or RepConv) followed by `bn` at
    inference, as one convolution."""
    if isinstance(conv, RepConv):
        return with_batch_norm(*_folded_rep_conv(conv), bn, conv.depthwise)
    depthwise = isinstance(conv, keras.layers.DepthwiseConv2D)
    kernel = conv.kernel
    channels = kernel.shape[2] * kernel.shape[3] if depthwise else kernel.shape[3]
    bias = conv.bias if conv.use_bias else ops.zeros((channels,), kernel.dtype)
    return with_batch_norm(kernel, bias, bn, depthwise)


def _folded_rep_conv(rep):
    """(kernel, bias) of the one convolution that equals `rep`'s branches at inference: each
    branch's batch norm folded into its kernel, the 1x1 kernel and the identity (a kernel
    with 1 at the centre tap) padded to `kernel_size`, all summed."""
    if rep.deploy:
        bias = rep.conv.bias if rep.use_bias else ops.zeros((rep.filters,),
                                                             rep.conv.kernel.dtype)
        return rep.conv.kernel, bias
    kernel = bias = 0.0
    for conv, bn in zip(rep.convs, rep.batch_norms):
        branch_kernel, branch_bias = folded_kernel_and_bias(conv, bn)
        kernel, bias = kernel + branch_kernel, bias + branch_bias
    pad = rep.kernel_size // 2
    centre = ((pad, pad), (pad, pad), (0, 0), (0, 0))
    if rep.scale_conv is not None:
        branch_kernel, branch_bias = folded_kernel_and_bias(rep.scale_conv, rep.scale_bn)
        kernel, bias = kernel + ops.pad(branch_kernel, centre), bias + branch_bias
    if rep.identity_bn is not None:
        channels = rep.filters
        identity = np.ones((1, 1, channels, 1)) if rep.depthwise else \
            np.eye(channels).reshape(1, 1, channels, channels)
        dtype = rep.identity_bn.gamma.dtype
        branch_kernel, branch_bias = with_batch_norm(
            ops.cast(identity, dtype), ops.zeros((channels,), dtype), rep.identity_bn,
            rep.depthwise)
        kernel, bias = kernel + ops.pad(branch_kernel, centre), bias + branch_bias
    return kernel, bias


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
        kernel, bias = folded_kernel_and_bias(rep)
        deployed.conv.kernel.assign(kernel)
        if deployed.use_bias:
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
    batch_norm_after = _batch_norms_after_linear_modules(model)
    module_before = {id(bn): module for module, bn in batch_norm_after.values()}

    def deploy_layer(layer):
        if not in_train_form(layer):
            return from_config(layer)
        if id(layer) in batch_norm_after:
            return from_config(layer, deploy=True, cheap_bias=False)
        return from_config(layer, deploy=True)

    def transfer(original, copy):
        _fold_or_copy(original, copy)
        module = module_before.get(id(original))
        if module is not None:  # BN(x + b) is BN(x) with the moving mean less b
            _, bias = folded_kernel_and_bias(module.cheap_conv)
            start = module.primary_filters
            mean = copy.moving_mean
            mean.assign(ops.concatenate([mean[:start],
                                         mean[start:] - bias[:module.filters - start]]))

    return clone_with_weights(model, deploy_layer, transfer, recursive=True)


def _batch_norms_after_linear_modules(model):
    """{id(module): (module, batch norm)} of the train-form Ghost modules of `model` (nested
    models included) whose deploy form's cheap bias can move into the batch norm after them:
    linear, without DFC gate, called once, their output read only by a BatchNormalization
    over the channels, itself called once."""
    found = {}
    graphs = [model] + [layer for layer in sublayers(model, recursive=True)
                        if isinstance(layer, keras.Model)]
    for graph in graphs:
        if getattr(graph, "inputs", None) is None:
            continue
        readers = consumers(graph)
        for layer in graph.layers:
            if not (isinstance(layer, GhostModule) and in_train_form(layer)
                    and layer.cheap_filters and not layer.dfc_attention
                    and layer.activation in (False, None, "linear")
                    and len(layer._inbound_nodes) == 1):
                continue
            following = readers.get(id(layer.output), [])
            if (len(following) == 1
                    and isinstance(following[0], keras.layers.BatchNormalization)
                    and following[0].axis in (-1, len(layer.output.shape) - 1)
                    and len(following[0]._inbound_nodes) == 1):
                found[id(layer)] = (layer, following[0])
    return found


def deploy_form(model):
    """The form of `model` that runs at inference: `reparameterize(model)` when it has layers
    to fold, else `model` itself (for code that takes any model, such as export)."""
    return reparameterize(model) if has_train_form_layers(model) else model
