"""Model constructors, and the registry that builds any of them by name.

`list_models()` gives the names, `get_model(name, **kwargs)` builds one and
`model_entry(name)` reads its facts (input size, evaluation transform, options, weights).
Importing this package registers every model of the library, and makes each registered
constructor (`GhostNet100`, `ghost_resnet56`, ...) an attribute of it.
"""
# Registration order is listing order: the ImageNet models first.
from ghostnet_tf.models import ghostnet, cifar, registry  # noqa: F401  isort: skip
from ghostnet_tf.data.eval_transform import EvalTransform
from ghostnet_tf.models.cifar import cifar_resnet, ghost_cifar_resnet
from ghostnet_tf.models.ghostify import ghostify
from ghostnet_tf.models.ghostnet import (GhostNet, GhostNetV2, GhostNetV3, convert_checkpoint,
                                         convertible_models, feature_pyramid)
from ghostnet_tf.models.registry import ModelEntry, get_model, list_models, model_entry
from ghostnet_tf.models.reparameterize import reparameterize

CONSTRUCTORS = registry.constructors()
globals().update(CONSTRUCTORS)
__all__ = ["EvalTransform", "GhostNet", "GhostNetV2", "GhostNetV3", "ModelEntry",
           "cifar_resnet", "convert_checkpoint", "convertible_models", "feature_pyramid",
           "get_model", "ghost_cifar_resnet", "ghostify", "list_models", "model_entry",
           "reparameterize", *CONSTRUCTORS]
