"""The loading layer: every model file becomes a predictor that knows its input, its classes
and, where it can, its registry entry; images are read as the model's entry says."""
import json
import os
import subprocess
import sys

import keras
import numpy as np
import pytest
import tensorflow as tf

from ghostnet_tf.checks import ArgumentError
from ghostnet_tf.export import convert_tflite, export_saved_model
from ghostnet_tf.imagenet import IMAGENET_CLASSES
from ghostnet_tf.loading import load_predictor, read_image
from ghostnet_tf.models import get_model
from ghostnet_tf.data.eval_transform import EvalTransform

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


@pytest.fixture(scope="module")
def model_files(tmp_path_factory):
    """A Ghost-ResNet-20 as .keras, .weights.h5, SavedModel and .tflite (in an export folder
    with labels.txt and export.json, as export.py writes them)."""
    root = tmp_path_factory.mktemp("loading")
    keras.utils.set_random_seed(3)
    model = get_model("ghost_resnet20", classes=4)
    model.save(root / "model.keras")
    model.save_weights(root / "model.weights.h5")
    export = root / "export"
    export_saved_model(model, str(export / "saved_model"))
    (export / "model_float32.tflite").write_bytes(
        convert_tflite(str(export / "saved_model"), "float32"))
    (export / "labels.txt").write_text("cat\ndog\nfox\nowl\n")
    (export / "export.json").write_text(json.dumps({"model": model.name}))
    return root, model


def test_every_kind_of_file_predicts_what_the_model_does(model_files):
    root, model = model_files
    images = np.random.default_rng(0).uniform(0, 255, (3, 32, 32, 3)).astype("float32")
    expected = keras.ops.convert_to_numpy(model(images))
    predictors = {
        "keras": load_predictor(root / "model.keras"),
        "weights": load_predictor(root / "model.weights.h5", arch="ghost_resnet20", classes=4),
        "saved_model": load_predictor(root / "export" / "saved_model"),
        "tflite": load_predictor(root / "export" / "model_float32.tflite"),
    }
    for kind, predictor in predictors.items():
        np.testing.assert_allclose(predictor(images), expected, atol=1e-5, err_msg=kind)
        assert predictor.input_shape == (32, 32, 3) and predictor.num_classes == 4, kind
        assert predictor.input_dtype == "float32"
        # Known by name from the .keras file, or from export.json beside an export.
        assert predictor.model_name == "ghost_resnet20", kind
        assert predictor.eval_transform == EvalTransform("bilinear", 1.0)
    # labels.txt beside an export names the classes; nothing names those of the .keras file.
    assert predictors["tflite"].class_names == ("cat", "dog", "fox", "owl")
    assert predictors["saved_model"].class_names == ("cat", "dog", "fox", "owl")
    assert predictors["keras"].class_names is None


def test_class_names_from_a_labels_file_or_imagenet(model_files, tmp_path):
    root, _ = model_files
    labels = tmp_path / "names.txt"
    labels.write_text("a\nb\n")
    with pytest.raises(ArgumentError, match="`labels` .* has 2 names but the model has 4"):
        load_predictor(root / "model.keras", labels=labels)
    get_model("resnet20", classes=1000).save(tmp_path / "imagenet_sized.keras")
    assert load_predictor(tmp_path / "imagenet_sized.keras").class_names == IMAGENET_CLASSES


def test_bad_model_files_name_the_argument(model_files, tmp_path):
    root, _ = model_files
    with pytest.raises(ArgumentError, match="`arch` is needed: .*model.weights.h5 holds "
                                            "weights only"):
        load_predictor(root / "model.weights.h5")
    with pytest.raises(ArgumentError, match="`arch` 'resnet99' is not a model"):
        load_predictor(root / "model.weights.h5", arch="resnet99")
    with pytest.raises(ArgumentError, match="`model` .*missing.keras: no such file"):
        load_predictor(tmp_path / "missing.keras")
    (tmp_path / "folder").mkdir()
    with pytest.raises(ArgumentError, match="a folder, but not a SavedModel .* nor a keras-hub "
                                            "preset"):
        load_predictor(tmp_path / "folder")
    (tmp_path / "model.mlmodel").write_bytes(b"coreml")
    with pytest.raises(ArgumentError, match="expected a .keras file, .* or an .onnx file"):
        load_predictor(tmp_path / "model.mlmodel")
    (tmp_path / "model.onnx").write_bytes(b"onnx")
    with pytest.raises(ArgumentError, match="model.onnx is not a readable .onnx file"):
        load_predictor(tmp_path / "model.onnx")


def test_read_image_applies_the_transform(tmp_path):
    # A 40x80 image whose left and right quarters are black and its middle white.
    pixels = np.zeros((40, 80, 3), np.uint8)
    pixels[:, 20:60] = 255
    path = tmp_path / "wide.png"
    path.write_bytes(tf.io.encode_png(pixels).numpy())
    # crop 1.0: the short side resized to 20 (40 wide), then the center 20x20 crop: the
    # white middle (its edge columns blended by the antialiased resize); squeezing the whole
    # image would keep the black quarters.
    image = read_image(path, (20, 20, 3), EvalTransform("bilinear", 1.0))
    assert image.shape == (20, 20, 3) and image.dtype == np.float32
    assert image[:, 1:-1].min() > 250 and image.min() > 200
    # crop 0.5: resized to 40x80 (the short side 20 / 0.5), center 20x20 of the white middle.
    assert read_image(path, (20, 20, 3), EvalTransform("bicubic", 0.5)).min() > 250
    # A 1-channel model gets the image in gray.
    assert read_image(path, (20, 20, 1), EvalTransform("bilinear", 1.0)).shape == (20, 20, 1)
    (tmp_path / "text.png").write_text("not an image")
    with pytest.raises(ArgumentError, match="`image` .*text.png is not a complete JPEG"):
        read_image(tmp_path / "text.png", (20, 20, 3))


@pytest.mark.slow
def test_a_tool_starts_quietly_and_fails_in_one_line(tmp_path):
    # No TF_CPP_MIN_LOG_LEVEL from the user: TensorFlow's C++ start-up log is kept out.
    env = {key: value for key, value in os.environ.items() if key != "TF_CPP_MIN_LOG_LEVEL"}
    result = subprocess.run(
        [sys.executable, os.path.join(REPO, "eval.py"), "--model", str(tmp_path / "x.keras"),
         "--dataset", "cifar10"], capture_output=True, text=True, env=env, cwd=tmp_path)
    assert result.returncode == 2
    assert result.stdout == ""
    assert result.stderr.splitlines() == [f"eval.py: error: --model {tmp_path / 'x.keras'}: "
                                          "no such file or folder."]
