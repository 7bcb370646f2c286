"""The portable model (ghostnet_tf.portable): Keras' built-in layers only, the same outputs,
and a `.keras` file that loads where the library cannot be imported."""
import os
import subprocess
import sys
import textwrap

import keras
import numpy as np
import pytest

import ghostnet_tf
from ghostnet_tf.checks import ArgumentError
from ghostnet_tf.layers import GhostModule, RepConv, SqueezeExcite
from ghostnet_tf.models import ghostify, reparameterize
from ghostnet_tf.portable import builtin_only, portable
from tests.numerics import randomize_batch_norms, relative_difference


def _odd_parts_model():
    """What the registry models do not have: a Ghost module whose maps are cut (ratio 3:
    4 + 8 maps for 10 channels), a RepConv and a squeeze-excite on their own."""
    inputs = keras.Input((12, 12, 3))
    x = GhostModule(10, ratio=3, name="cut")(inputs)
    x = RepConv(10, 3, strides=2, depthwise=True, name="rep")(x)
    x = SqueezeExcite(name="se")(x)
    x = keras.layers.GlobalAveragePooling2D()(x)
    return keras.Model(inputs, keras.layers.Dense(4)(x), name="odd_parts")


MODELS = {
    "ghostnet_050": lambda: ghostnet_tf.get_model("ghostnet_050", input_shape=(96, 96, 3),
                                                  classifier_activation=None),
    # At 112x112 the DFC gates are resized to even (14x14) and odd (7x7) sizes.
    "ghostnetv2_100": lambda: ghostnet_tf.get_model("ghostnetv2_100", input_shape=(112, 112, 3),
                                                    classifier_activation=None),
    "ghostnetv3_050": lambda: ghostnet_tf.get_model("ghostnetv3_050", input_shape=(96, 96, 3),
                                                    classifier_activation=None),
    "ghost_resnet20": lambda: ghostnet_tf.get_model("ghost_resnet20",
                                                    classifier_activation=None),
    "ghostified_resnet20_v2": lambda: ghostify(ghostnet_tf.get_model(
        "resnet20", classifier_activation=None), version=2),
    "odd_parts": _odd_parts_model,
}


@pytest.mark.parametrize("name", list(MODELS))
def test_the_portable_model_is_built_in_layers_computing_the_same(name):
    model = randomize_batch_norms(MODELS[name](), seed=1)
    graph = portable(model)
    assert builtin_only(graph) and not builtin_only(model)
    images = np.random.default_rng(0).uniform(0, 255, (2,) + model.input_shape[1:])
    expected = model(images.astype("float32"))
    assert relative_difference(graph(images.astype("float32")), expected) < 1e-5
    # Its own copies of the weights; the fixed 0/1 weights it adds are not trained.
    assert not {id(w) for w in graph.weights} & {id(w) for w in model.weights}
    folded = reparameterize(model) if name.startswith("ghostnetv3") or name == "odd_parts" \
        else model
    assert graph.count_params() - sum(
        int(np.prod(w.shape)) for layer in graph.layers if not layer.trainable
        and not isinstance(layer, keras.layers.BatchNormalization)
        for w in layer.weights) == folded.count_params()


def test_a_library_layer_without_a_built_in_form_is_refused():
    from ghostnet_tf.export_rewrites import ExportGhostModule

    inputs = keras.Input((8, 8, 3))
    model = keras.Model(inputs, ExportGhostModule(4, name="export_form")(inputs), name="m")
    with pytest.raises(ArgumentError, match="ExportGhostModule .export_form. that has no "
                                            "built-in form"):
        portable(model)


LOAD_WITHOUT_LIBRARY = textwrap.dedent("""
    import sys
    sys.modules["ghostnet_tf"] = None  # importing the library fails in this process
    import keras
    import numpy as np
    model = keras.saving.load_model(sys.argv[1])
    assert keras.backend.backend() == sys.argv[4], keras.backend.backend()
    np.save(sys.argv[3], keras.ops.convert_to_numpy(model(np.load(sys.argv[2]))))
""")


@pytest.mark.slow
@pytest.mark.parametrize("backend", ["tensorflow", "jax"])
def test_the_portable_file_loads_without_the_library(tmp_path, backend):
    # 48x48: DFC gates of 6x6 (even) and 3x3 (odd), in a model that loads quickly.
    model = randomize_batch_norms(ghostnet_tf.get_model(
        "ghostnetv2_100", input_shape=(48, 48, 3), classifier_activation=None), seed=2)
    path = str(tmp_path / "model_portable.keras")
    portable(model).save(path)
    images = np.random.default_rng(1).uniform(0, 255, (2, 48, 48, 3)).astype("float32")
    np.save(tmp_path / "images.npy", images)
    env = {**os.environ, "KERAS_BACKEND": backend, "JAX_PLATFORMS": "cpu"}
    subprocess.run([sys.executable, "-c", LOAD_WITHOUT_LIBRARY, path,
                    str(tmp_path / "images.npy"), str(tmp_path / "out.npy"), backend],
                   env=env, check=True, timeout=600)
    assert relative_difference(np.load(tmp_path / "out.npy"), model(images)) < 1e-5


def test_export_writes_the_portable_file_and_loaders_open_it(tmp_path):
    from ghostnet_tf.export import export
    from ghostnet_tf.loading import load_predictor

    model = ghostnet_tf.get_model("ghost_resnet20", classes=10)
    images = np.random.default_rng(3).uniform(0, 255, (16, 32, 32, 3)).astype("float32")
    report = export(model, tmp_path / "out", ["keras"], check_images=images)
    entry = report["exports"]["keras"]
    assert entry["check"]["top1_agreement"] == 1.0 and entry["check"]["meets_float_goal"]
    path = tmp_path / "out" / "model_portable.keras"
    assert builtin_only(keras.saving.load_model(path))
    predictor = load_predictor(str(path))
    assert predictor.input_shape == (32, 32, 3) and predictor.num_classes == 10
    np.testing.assert_allclose(predictor.predict(images), model.predict(images, verbose=0),
                               atol=1e-6)
