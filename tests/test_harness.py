"""One harness for every custom layer and every registry entry (keras-hub's habit): the same
checks for each, so that a new layer or model gets them by being listed here.

Layers: config round trip, `.keras` save and load with equal outputs, mixed precision
(float16 compute, float32 variables, finite outputs), and equal outputs on the JAX backend.
Registry entries: config round trip of every layer, mixed precision, and JAX backend
equality for one model of each family (built at a small input; test_registry saves and
reloads each entry at its full size).
"""
import json
import os
import subprocess
import sys

import keras
import numpy as np
import pytest

from ghostnet_tf.compat import sublayers
from ghostnet_tf.layers import (GhostBottleneck, GhostModule, RepConv, SqueezeExcite,
                                ZeroPadShortcut)
from ghostnet_tf.models import get_model, list_models, model_entry
from tests.numerics import randomize_batch_norms

# name: (layer factory, input shape without the batch)
LAYERS = {
    "ghost_module": (lambda: GhostModule(16), (12, 12, 8)),
    "ghost_module_linear": (
        lambda: GhostModule(12, kernel_size=3, ratio=3, use_batch_norm=False, use_bias=True,
                            activation=False), (12, 12, 8)),
    "ghost_module_dfc": (lambda: GhostModule(16, dfc_attention=True), (11, 13, 8)),
    "ghost_module_reparam": (lambda: GhostModule(16, kernel_size=3, reparam_branches=3),
                             (12, 12, 8)),
    "ghost_module_reparam_deploy": (
        lambda: GhostModule(16, kernel_size=3, reparam_branches=3, deploy=True), (12, 12, 8)),
    "ghost_bottleneck": (lambda: GhostBottleneck(24, 16, strides=2, se_ratio=0.25),
                         (12, 12, 8)),
    "ghost_bottleneck_v2": (lambda: GhostBottleneck(24, 8, dfc_attention=True), (12, 12, 8)),
    "ghost_bottleneck_v3": (
        lambda: GhostBottleneck(24, 16, dw_kernel_size=5, strides=2, dfc_attention=True,
                                reparam_branches=3), (12, 12, 8)),
    "squeeze_excite": (lambda: SqueezeExcite(0.25), (6, 6, 16)),
    "squeeze_excite_clip": (lambda: SqueezeExcite(0.25, divisor=1, gate="clip"), (6, 6, 16)),
    "rep_conv": (lambda: RepConv(8, 3, strides=2), (12, 12, 4)),
    "rep_conv_depthwise": (lambda: RepConv(4, 3, depthwise=True, identity_branch=True),
                           (12, 12, 4)),
    "rep_conv_deploy": (lambda: RepConv(8, 5, deploy=True), (12, 12, 4)),
    "zero_pad_shortcut": (lambda: ZeroPadShortcut(16, 2), (12, 12, 8)),
}


def _layer_model(name):
    factory, shape = LAYERS[name]
    inputs = keras.Input(shape)
    return randomize_batch_norms(keras.Model(inputs, factory()(inputs), name=name))


def _registry_model(name):
    """The registry model `name`, at a size that builds quickly: 64x64 for ImageNet's."""
    return get_model(name, **({"input_shape": (64, 64, 3)} if name.startswith("ghostnet")
                              else {}))


def _inputs(model, seed=1):
    shape = tuple(model.input_shape[1:])
    return np.random.default_rng(seed).uniform(0, 255 if shape[-1] == 3 else 1,
                                               (2,) + shape).astype("float32")


def _output(model, x):
    return keras.ops.convert_to_numpy(model(x, training=False))


def _check_config_round_trip(layer):
    config = layer.get_config()
    assert type(layer).from_config(config).get_config() == config


@pytest.mark.parametrize("name", LAYERS)
def test_layer_config_round_trip_and_keras_file(name, tmp_path):
    model = _layer_model(name)
    layer = model.layers[-1]
    _check_config_round_trip(layer)
    x = _inputs(model)
    expected = _output(model, x)
    assert np.abs(expected).max() > 0  # a real signal
    model.save(tmp_path / f"{name}.keras")
    loaded = keras.saving.load_model(tmp_path / f"{name}.keras")
    assert type(loaded.layers[-1]) is type(layer)
    np.testing.assert_array_equal(_output(loaded, x), expected)


def _check_mixed_precision(build, name):
    """Build under mixed_float16: float16 compute, float32 variables, and a finite output
    of a training step's forward pass (batch statistics, as mixed precision is used: an
    untrained deep network's inference pass can overflow float16, trained or not)."""
    keras.config.set_dtype_policy("mixed_float16")
    try:
        model = build(name)
    finally:
        keras.config.set_dtype_policy("float32")
    own = [layer for layer in sublayers(model, recursive=True)
           if type(layer).__module__.startswith("ghostnet_tf") or layer.weights]
    assert own and all(layer.compute_dtype == "float16" for layer in own)
    assert all(variable.dtype == "float32" for variable in model.weights)
    output = keras.ops.convert_to_numpy(model(_inputs(model), training=True))
    assert np.isfinite(output.astype("float32")).all()
    return output


@pytest.mark.parametrize("name", LAYERS)
def test_layer_mixed_precision(name):
    assert _check_mixed_precision(_layer_model, name).dtype == np.float16


@pytest.mark.parametrize("name", list_models())
def test_registry_entry_config_round_trip_and_mixed_precision(name):
    model = _registry_model(name)
    for layer in sublayers(model, recursive=True):
        if type(layer).__module__.startswith("ghostnet_tf"):
            _check_config_round_trip(layer)
    # The classifier's softmax stays float32 under a mixed policy.
    assert _check_mixed_precision(_registry_model, name).dtype == np.float32


# Loads each model file named in argv[1] (a JSON list) on the JAX backend, after importing
# keras and the package alone (what makes the library's classes loadable), and prints the
# largest difference from the outputs saved beside it.
JAX_SCRIPT = """
import json, sys
import keras, ghostnet_tf
import numpy as np
assert keras.backend.backend() == "jax"
assert "ghostnet_tf.models" not in sys.modules
differences = {}
for path in json.loads(sys.argv[1]):
    reference = np.load(path + ".npz")
    model = keras.saving.load_model(path)
    output = keras.ops.convert_to_numpy(model(reference["x"], training=False))
    scale = max(float(np.abs(reference["y"]).max()), 1.0)
    differences[path] = float(np.abs(output - reference["y"]).max()) / scale
print(json.dumps(differences))
"""


def _one_model_per_family():
    """The first (smallest) registry model of each family that has layers of the library:
    the family's other widths and depths repeat the same layers (test_registry builds each
    of them on TensorFlow), and a family of Keras' own layers alone (the plain CIFAR VGG) is
    Keras' to keep equal on every backend."""
    firsts = {}
    for name in list_models():
        firsts.setdefault(model_entry(name).family, name)
    return [name for name in firsts.values()
            if any(type(layer).__module__.startswith("ghostnet_tf")
                   for layer in _registry_model(name).layers)]


@pytest.mark.slow
def test_every_layer_and_registry_family_loads_and_agrees_on_the_jax_backend(tmp_path):
    families = _one_model_per_family()
    assert families == ["ghostnet_050", "ghostnet_050_paddle", "ghostnetv2_100",
                        "ghostnetv3_050", "resnet20", "ghost_resnet20", "ghost_vgg16"]
    models = [_layer_model(name) for name in LAYERS] + [
        randomize_batch_norms(_registry_model(name)) for name in families]
    paths = []
    for model in models:
        path = str(tmp_path / f"{model.name}.keras")
        x = _inputs(model)
        model.save(path)
        np.savez(path + ".npz", x=x, y=_output(model, x))
        paths.append(path)
    result = subprocess.run([sys.executable, "-c", JAX_SCRIPT, json.dumps(paths)],
                            env={**os.environ, "KERAS_BACKEND": "jax", "JAX_PLATFORMS": "cpu"},
                            capture_output=True, text=True, timeout=1200)
    assert result.returncode == 0, result.stderr[-3000:]
    differences = json.loads(result.stdout.strip().splitlines()[-1])
    assert sorted(differences) == sorted(paths)
    assert max(differences.values()) < 1e-4, differences
