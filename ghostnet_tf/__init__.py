"""GhostNet ("GhostNet: More Features from Cheap Operations", Han et al., CVPR 2020) for Keras 3.

Layers, models and the profiler use only `keras`, `keras.ops` and numpy, so they run on the
TensorFlow and JAX backends alike. Every model is in the registry: `list_models()`,
`get_model(name, **kwargs)`, `model_entry(name)`.
"""
from ghostnet_tf.layers import GhostBottleneck, GhostModule, SqueezeExcite
from ghostnet_tf.models import (
    GhostNet, GhostNet050, GhostNet100, GhostNet130, feature_pyramid, get_model, ghostify,
    list_models, model_entry)
from ghostnet_tf.profile import format_profile, profile_model

__version__ = "0.2.0"
