"""GhostNet ("GhostNet: More Features from Cheap Operations", Han et al., CVPR 2020) for Keras 3.

Layers, models and the profiler use only `keras`, `keras.ops` and numpy, so they run on the
TensorFlow and JAX backends alike.
"""
from ghostnet_tf.layers import GhostBottleneck, GhostModule, SqueezeExcite
from ghostnet_tf.models import (
    MODELS, GhostNet, GhostNet050, GhostNet100, GhostNet130, feature_pyramid, get_model,
    ghostify)
from ghostnet_tf.profile import format_profile, profile_model

__version__ = "0.1.0"
