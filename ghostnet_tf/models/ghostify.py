"""`ghostify`: turn the convolutions of a Keras model into Ghost modules."""
import keras

from ghostnet_tf.compat import is_functional
from ghostnet_tf.layers import GhostModule, ghost_module_version
from ghostnet_tf.models.transfer import clone_with_weights, copy_weights, from_config


def _is_plain_convolution(layer):
    # Conv2D subclasses that are not ordinary convolutions (and grouped convolutions, whose
    # channel groups a Ghost module would mix) are left as they are.
    return type(layer) is keras.layers.Conv2D and layer.groups == 1


def ghost_module_for(conv, ratio=2, dw_size=3, version=1):
    """The Ghost module that replaces `conv` (a `keras.layers.Conv2D`), under the same name.

    The primary convolution keeps the replaced layer's kernel size, strides, padding and bias;
    the module is linear, with no batch norm of its own, and applies the replaced layer's
    activation, so batch norm and activation are applied once, where the model had them.
    With `version` 2 it has GhostNetV2's DFC attention (whose branch has its batch norms);
    with `version` 3 its convolutions are GhostNetV3's re-parameterizable branches, each with
    its batch norm (folded away by `reparameterize`).
    """
    if conv.dilation_rate != (1, 1):
        raise ValueError(f"Cannot ghostify layer {conv.name!r}: dilated convolutions are not "
                         "supported.")
    kernel_size = conv.kernel_size
    strides = conv.strides
    if kernel_size[0] != kernel_size[1] or strides[0] != strides[1]:
        raise ValueError(f"Cannot ghostify layer {conv.name!r}: kernel size {kernel_size} and "
                         f"strides {strides} must be square.")
    activation = keras.activations.serialize(conv.activation)
    if not isinstance(activation, str):
        raise ValueError(f"Cannot ghostify layer {conv.name!r}: its activation is not a named "
                         "Keras activation; put it in an Activation layer instead.")
    # Version 3 is GhostNetV3's re-parameterization alone, without V2's attention.
    options = ghost_module_version(version, attention=version == 2)
    reparameterizable = options["reparam_branches"] > 0
    return GhostModule(
        conv.filters, kernel_size=kernel_size[0], ratio=ratio, dw_size=dw_size,
        strides=strides[0], padding=conv.padding,
        activation=False if activation == "linear" else activation,
        use_batch_norm=reparameterizable, use_bias=conv.use_bias and not reparameterizable,
        name=conv.name, dtype=conv.dtype_policy, **options)


def ghostify(model, ratio=2, dw_size=3, keep_first=True, name=None, version=1):
    """Return a copy of `model` whose `Conv2D` layers are Ghost modules.

    Works on functional and Sequential models (nested ones too). Every other layer is copied
    with its weights; the Ghost modules start from a fresh initialization. The first
    convolution stays plain when `keep_first` is True, as the public reproductions of the
    paper's CIFAR models do (the official `ghost_resnet.py` keeps its stem plain too): one
    that replaced it as well lost about 2 points.

    Args:
        model: a functional or Sequential `keras.Model`.
        ratio: the paper's `s`, >= 1: 1 / ratio of each module's outputs are intrinsic maps.
        dw_size: the paper's `d`, odd kernel size of the cheap depthwise convolution.
        keep_first: keep the first convolution (in topological order) a plain `Conv2D`.
        name: name of the new model; defaults to "ghost_" + the model's name.
        version: 1 for GhostNet's module, 2 for GhostNetV2's, with DFC attention (a 2x2
            average pool, a convolution like the primary one, 1x5 and 5x1 depthwise
            convolutions with batch norms, a sigmoid gate upsampled to the output): long-range
            attention for any convolutional model; 3 for GhostNetV3's, whose convolutions are
            trained as sums of conv + BN branches and folded into one by `reparameterize`.
    """
    ghost_module_version(version)  # a bad version is refused before anything is copied
    if not (isinstance(model, keras.Sequential) or is_functional(model)):
        raise ValueError("`model` must be a functional or Sequential keras.Model, got "
                         f"{type(model).__name__}: a subclassed model has no graph to rewrite.")
    # Checked here, before cloning, so that a bad value names ghostify's own argument.
    GhostModule(1, ratio=ratio, dw_size=dw_size)

    fresh = set()  # ids of the new Ghost modules, which start from their initialization
    seen_convolution = False

    def replace_layer(layer):
        nonlocal seen_convolution
        if _is_plain_convolution(layer):
            is_first = not seen_convolution
            seen_convolution = True
            if not (keep_first and is_first):
                module = ghost_module_for(layer, ratio=ratio, dw_size=dw_size, version=version)
                fresh.add(id(module))
                return module
        return from_config(layer)

    def transfer(layer, new_layer):
        if id(new_layer) not in fresh:
            copy_weights(layer, new_layer)

    ghost = clone_with_weights(model, replace_layer, transfer, recursive=True)
    if not seen_convolution:
        raise ValueError(f"`model` {model.name!r} has no Conv2D layer to ghostify.")
    ghost.name = name or f"ghost{'' if version == 1 else f'v{version}'}_{model.name}"
    return ghost
