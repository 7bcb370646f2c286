"""Model constructors, and `get_model` to build one by name."""
from ghostnet_tf.models.cifar import (
    cifar_resnet, ghost_cifar_resnet, ghost_resnet20, ghost_resnet32, ghost_resnet44,
    ghost_resnet56, ghost_resnet110, ghost_vgg16, resnet20, resnet32, resnet44, resnet56,
    resnet110, vgg16)
from ghostnet_tf.models.ghostify import ghostify
from ghostnet_tf.models.ghostnet import (
    GhostNet, GhostNet050, GhostNet100, GhostNet130, feature_pyramid)

MODELS = {
    "ghostnet_050": GhostNet050,
    "ghostnet_100": GhostNet100,
    "ghostnet_130": GhostNet130,
    "resnet20": resnet20,
    "resnet32": resnet32,
    "resnet44": resnet44,
    "resnet56": resnet56,
    "resnet110": resnet110,
    "vgg16": vgg16,
    "ghost_resnet20": ghost_resnet20,
    "ghost_resnet32": ghost_resnet32,
    "ghost_resnet44": ghost_resnet44,
    "ghost_resnet56": ghost_resnet56,
    "ghost_resnet110": ghost_resnet110,
    "ghost_vgg16": ghost_vgg16,
}


def get_model(name, **kwargs):
    """Build the model registered as `name` (see `MODELS`), passing on `kwargs`."""
    if name not in MODELS:
        raise ValueError(f"Unknown model {name!r}; choose one of: {', '.join(MODELS)}.")
    return MODELS[name](**kwargs)
