"""Model constructors, and the registry that builds any of them by name.

`list_models()` gives the names, `get_model(name, **kwargs)` builds one and
`model_entry(name)` reads its facts (input size, evaluation transform, options, weights).
Importing this package registers every model of the library.
"""
# Registration order is listing order: the ImageNet models first.
from ghostnet_tf.models.ghostnet import (  # isort: skip
    GhostNet, GhostNet050, GhostNet100, GhostNet130, GhostNetV2, GhostNetV2_100,
    GhostNetV2_130, GhostNetV2_160, GhostNetV3, GhostNetV3_050, GhostNetV3_100, GhostNetV3_130,
    GhostNetV3_160, convert_checkpoint, convertible_models, feature_pyramid)
from ghostnet_tf.models.cifar import (  # isort: skip
    cifar_resnet, ghost_cifar_resnet, ghost_resnet20, ghost_resnet32, ghost_resnet44,
    ghost_resnet56, ghost_resnet110, ghost_vgg16, resnet20, resnet32, resnet44, resnet56,
    resnet110, vgg16)
from ghostnet_tf.data.eval_transform import EvalTransform
from ghostnet_tf.models.ghostify import ghostify
from ghostnet_tf.models.reparameterize import reparameterize
from ghostnet_tf.models.registry import (
    ModelEntry, get_model, list_models, model_entry)
