"""keras-hub presets (ghostnet_tf.export.keras_hub_preset): keras-hub's own ImageClassifier
with the portable backbone and the model's preprocessing, loaded where this library cannot
be imported, and ghostnet-presets for the published weights."""
import json
import os
import subprocess
import sys
import textwrap

import keras
import numpy as np
import pytest

import ghostnet_tf
from ghostnet_tf.checks import ArgumentError
from ghostnet_tf.models import EvalTransform
from ghostnet_tf.export.keras_hub_preset import ModelCard, image_classifier, save_preset
from ghostnet_tf.portable import builtin_only
from tests.numerics import randomize_batch_norms

LOAD_WITHOUT_LIBRARY = textwrap.dedent("""
    import json, sys
    sys.modules["ghostnet_tf"] = None  # importing the library fails in this process
    import keras, keras_hub
    import numpy as np
    classifier = keras_hub.models.ImageClassifier.from_preset(sys.argv[1])
    assert keras.backend.backend() == sys.argv[4], keras.backend.backend()
    np.save(sys.argv[3], classifier.predict(np.load(sys.argv[2]), verbose=0))
""")


def _imagenet_model(size=64, seed=1):
    """GhostNet 0.5x with random batch-norm statistics: the ImageNet normalization at its
    input, a softmax classifier."""
    return randomize_batch_norms(ghostnet_tf.get_model(
        "ghostnet_050", input_shape=(size, size, 3), classes=7), seed=seed)


@pytest.mark.slow
@pytest.mark.parametrize("backend", ["tensorflow", "jax"])
def test_a_preset_loads_in_keras_hub_without_the_library(tmp_path, backend):
    model = _imagenet_model()
    save_preset(model, tmp_path / "preset")
    # At the input size keras-hub's resize is the identity: the preprocessor only normalizes.
    images = np.random.default_rng(0).uniform(0, 255, (3, 64, 64, 3)).astype("float32")
    np.save(tmp_path / "images.npy", images)
    env = {**os.environ, "KERAS_BACKEND": backend, "JAX_PLATFORMS": "cpu"}
    subprocess.run([sys.executable, "-c", LOAD_WITHOUT_LIBRARY, str(tmp_path / "preset"),
                    str(tmp_path / "images.npy"), str(tmp_path / "out.npy"), backend],
                   env=env, check=True, timeout=600)
    expected = model.predict(images, verbose=0)
    outputs = np.load(tmp_path / "out.npy")
    np.testing.assert_allclose(outputs, expected, atol=1e-6)
    assert (outputs.argmax(-1) == expected.argmax(-1)).all()


def test_the_preset_is_keras_hubs_image_classifier_with_the_models_preprocessing(tmp_path):
    model = _imagenet_model()
    classifier = image_classifier(model, EvalTransform("bicubic", 0.875))
    assert builtin_only(classifier.backbone)
    # The normalization moved into the converter: the first layer after the input pads.
    assert type(classifier.backbone.layers[1]).__name__ == "ZeroPadding2D"
    assert type(model.layers[1]).__name__ == "Rescaling"
    converter = classifier.preprocessor.image_converter.get_config()
    mean, std = np.array([0.485, 0.456, 0.406]), np.array([0.229, 0.224, 0.225])
    np.testing.assert_allclose(converter["scale"], 1 / (255 * std), rtol=1e-6)
    np.testing.assert_allclose(converter["offset"], -mean / std, rtol=1e-6)
    assert converter["image_size"] == (64, 64) and converter["interpolation"] == "bicubic"
    assert converter["crop_to_aspect_ratio"] and converter["antialias"]
    assert classifier.num_classes == 7 and classifier.activation == "softmax"
    # Images of another size are resized by the preprocessor as the registry transform does
    # (without its crop: keras-hub's converter has no crop fraction).
    images = np.random.default_rng(1).uniform(0, 255, (2, 96, 80, 3)).astype("float32")
    square = images[:, 8:88]  # the center crop to the aspect ratio
    resized = keras.ops.image.resize(square, (64, 64), interpolation="bicubic", antialias=True)
    np.testing.assert_allclose(classifier.predict(images, verbose=0),
                               model.predict(resized, verbose=0), atol=1e-5)


def test_export_writes_a_preset_folder_that_loaders_open(tmp_path):
    from ghostnet_tf.export import export
    from ghostnet_tf.loading import load_predictor

    model = randomize_batch_norms(ghostnet_tf.get_model("ghost_resnet20", classes=10), seed=3)
    images = np.random.default_rng(3).uniform(0, 255, (16, 32, 32, 3)).astype("float32")
    report = export(model, tmp_path / "out", ["keras_hub"], check_images=images,
                    eval_transform=EvalTransform("bilinear", 1.0))
    entry = report["exports"]["keras_hub"]
    assert entry["check"]["top1_agreement"] == 1.0 and entry["check"]["meets_float_goal"]
    assert entry["image_converter"]["interpolation"] == "bilinear"
    folder = tmp_path / "out" / "keras_hub_preset"
    metadata = json.loads((folder / "metadata.json").read_text())
    assert metadata["tasks"] == ["ImageClassifier"]
    card = (folder / "README.md").read_text()
    assert card.startswith("---\nlibrary_name: keras-hub\n") and "license:" not in card
    assert f"Parameters: {model.count_params():,}" in card
    predictor = load_predictor(str(folder))
    assert predictor.input_shape == (32, 32, 3) and predictor.num_classes == 10
    np.testing.assert_allclose(predictor.predict(images), model.predict(images, verbose=0),
                               atol=1e-6)


def test_a_model_that_is_not_an_image_classifier_is_refused():
    inputs = keras.Input((16, 16, 3))
    features = keras.layers.Conv2D(4, 3)(inputs)
    with pytest.raises(ArgumentError, match="`model` features cannot be a keras-hub "
                                            "ImageClassifier: its output comes from Conv2D"):
        image_classifier(keras.Model(inputs, features, name="features"))
    pooled = keras.layers.GlobalAveragePooling2D()(features)
    relu = keras.Model(inputs, keras.layers.Dense(3, activation="relu", name="fc")(pooled),
                       name="relu_head")
    with pytest.raises(ArgumentError, match="its classifier fc has the activation relu"):
        image_classifier(relu)
    unpooled = keras.Model(inputs, keras.layers.Dense(3)(keras.layers.Flatten()(features)),
                           name="unpooled")
    with pytest.raises(ArgumentError, match="reads a 14x14 map unpooled"):
        image_classifier(unpooled)


def test_save_preset_leaves_an_earlier_preset_whole_when_it_fails(tmp_path):
    folder = tmp_path / "preset"
    save_preset(_imagenet_model(size=32), folder)
    before = sorted(os.listdir(folder))

    class Broken(ModelCard):
        def text(self, model, classifier):
            raise OSError("disk full")
    with pytest.raises(OSError, match="disk full"):
        save_preset(_imagenet_model(size=32, seed=2), folder, card=Broken())
    assert sorted(os.listdir(folder)) == before
    assert sorted(os.listdir(tmp_path)) == ["preset"]  # no staging folder left


def test_ghostnet_presets_builds_a_preset_per_published_weight_set(tmp_path, monkeypatch,
                                                                  capsys):
    from ghostnet_tf.cli import presets
    from ghostnet_tf.weights import pretrained_weights_path

    # Converted weights in the cache are read without the network.
    monkeypatch.setenv("KERAS_HOME", str(tmp_path / "keras_home"))
    weights = randomize_batch_norms(ghostnet_tf.get_model("ghostnet_100"), seed=4)
    os.makedirs(os.path.dirname(pretrained_weights_path("ghostnet_100")))
    weights.save_weights(pretrained_weights_path("ghostnet_100"))
    latency = tmp_path / "latency.json"
    latency.write_text(json.dumps({"measured": "a test run", "median_ms": {
        "ghostnet_100": {"float32": {"1": 3.04, "2": 1.69}, "int8": {"1": 1.68, "2": 1.02}}}}))
    assert presets.main([str(tmp_path / "out"), "--models", "ghostnet_100",
                         "--latency", str(latency)]) == 0
    assert presets.preset_folders(str(tmp_path / "out"), ["ghostnetv3_100"]) == {
        ("ghostnetv3_100", "imagenet"): str(tmp_path / "out" / "ghostnetv3_100_imagenet"),
        ("ghostnetv3_100", "imagenet_ema"): str(tmp_path / "out" /
                                                "ghostnetv3_100_imagenet_ema")}
    folder = tmp_path / "out" / "ghostnet_100_imagenet"
    card = (folder / "README.md").read_text()
    assert "license: apache-2.0" in card and "Published ImageNet top-1: 73.98%" in card
    assert "float32 3.04 ms, int8 1.68 ms (a test run)" in card
    assert "MACs: 141.2M at 224x224" in card
    assert f"with `ghostnet-presets {tmp_path / 'out'} --models ghostnet_100 --latency " \
           f"{latency}`" in card

    import keras_hub
    classifier = keras_hub.models.ImageClassifier.from_preset(str(folder))
    image = np.random.default_rng(5).uniform(0, 255, (1, 224, 224, 3)).astype("float32")
    np.testing.assert_allclose(classifier.predict(image, verbose=0),
                               weights.predict(image, verbose=0), atol=1e-6)

    assert presets.main([str(tmp_path / "out"), "--models", "ghostnet_050"]) == 2
    assert "--models ghostnet_050 has no published weights; expected some of ghostnet_100" \
        in capsys.readouterr().err
    latency.write_text('{"median_ms": {"ghostnet_100": {"float32": {"2": 1.69}}}}')
    assert presets.main([str(tmp_path / "out"), "--latency", str(latency)]) == 2
    assert "is not a latency file written by benchmarks/accuracy_latency.py --json" \
        in capsys.readouterr().err


def test_the_preset_gets_the_transform_the_images_really_had():
    from ghostnet_tf.data.source import DataSource

    timm = EvalTransform("bicubic", 0.875)
    # Array datasets are resized whole, bilinear, whatever the model's transform.
    assert DataSource("fashion_mnist").transform_of_images(timm) == EvalTransform("bilinear",
                                                                                  1.0)
    assert DataSource("folder", interpolation="bilinear").transform_of_images(timm) == \
        EvalTransform("bilinear", 0.875)
