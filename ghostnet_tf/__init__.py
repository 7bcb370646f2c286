"""GhostNet ("GhostNet: More Features from Cheap Operations", Han et al., CVPR 2020) for Keras 3.

Layers, models and the profiler use only `keras`, `keras.ops` and numpy, so they run on the
TensorFlow and JAX backends alike. Every model is in the registry: `list_models()`,
`get_model(name, **kwargs)`, `model_entry(name)`.

The names below are imported on first use, so that `import ghostnet_tf.cli...` starts
without Keras (the command-line tools quiet TensorFlow's start-up first). The library's
Keras classes are registered for deserialization as soon as Keras is imported, before or
after this package, so that `keras.saving.load_model` reads every file the library writes
after `import ghostnet_tf` alone.
"""
import importlib

import wrapt

__version__ = "0.2.0"

_EXPORTS = {
    "ghostnet_tf.layers": ("GhostBottleneck", "GhostModule", "RepConv", "SqueezeExcite"),
    # And every registered constructor of an ImageNet model (GhostNet100, ...): see
    # __getattr__.
    "ghostnet_tf.models": ("GhostNet", "GhostNetV2", "GhostNetV3", "feature_pyramid",
                           "get_model", "ghostify", "list_models", "model_entry",
                           "reparameterize"),
    "ghostnet_tf.profile": ("format_profile", "profile_model"),
}
# The modules that register Keras-serializable classes (layers, learning-rate schedules).
# Each imports only keras and modules without it, so that importing it from the hook,
# which may run while another module of the package is halfway through `import keras`,
# needs nothing that is not defined yet.
SERIALIZABLE_MODULES = ("ghostnet_tf.layers", "ghostnet_tf.quantization",
                        "ghostnet_tf.training.schedules")


@wrapt.when_imported("keras")
def _register_serializables(keras_module):
    for module in SERIALIZABLE_MODULES:
        importlib.import_module(module)


_MODULE_OF = {name: module for module, names in _EXPORTS.items() for name in names}


def _imagenet_constructors():
    """The registry's constructors with capitalized names: the ImageNet models'
    (GhostNet100, GhostNetV3_050, ...), so that a new width needs no line here."""
    models = importlib.import_module("ghostnet_tf.models")
    return {name: constructor for name, constructor in models.CONSTRUCTORS.items()
            if name[:1].isupper()}


def __getattr__(name):
    if name in _MODULE_OF:
        return getattr(importlib.import_module(_MODULE_OF[name]), name)
    if name == "__all__":  # computed on use: it needs the registry, hence Keras
        return sorted(set(_MODULE_OF) | set(_imagenet_constructors()))
    # Capitalized names only: submodules (lowercase) are left to the import system.
    constructor = _imagenet_constructors().get(name) if name[:1].isupper() else None
    if constructor is not None:
        return constructor
    raise AttributeError(f"module 'ghostnet_tf' has no attribute {name!r}")


def __dir__():
    return sorted(set(globals()) | set(_MODULE_OF))
