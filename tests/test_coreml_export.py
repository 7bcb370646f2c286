"""Core ML export: `model.mlpackage` converted by coremltools, checked as far as Linux allows
(the spec's input and outputs, its operations against the model's layers); Core ML's
prediction needs macOS and is not run here."""
import json

import coremltools
import keras
import numpy as np
import pytest

from ghostnet_tf.checks import ArgumentError
from ghostnet_tf.cli import export as export_cli
from ghostnet_tf.export import export, inference_copy
from ghostnet_tf.loading import load_predictor
from ghostnet_tf.models import get_model
from tests.test_onnx_export import _all_layers


def _convolutions(model):
    return sum(isinstance(layer, (keras.layers.Conv2D, keras.layers.DepthwiseConv2D))
               for layer in _all_layers(inference_copy(model)))


def _spec_with_image_input(path, size, color_space):
    """The spec of the .mlpackage at `path`, after checking that its input is a `size` x
    `size` image in `color_space` ("RGB" or "GRAYSCALE")."""
    spec = coremltools.models.MLModel(str(path), skip_model_load=True).get_spec()
    image = spec.description.input[0].type.imageType
    assert (image.width, image.height) == (size, size)
    assert image.colorSpace == getattr(coremltools.proto.FeatureTypes_pb2.ImageFeatureType,
                                       color_space)
    return spec


def _class_labels(spec):
    """The class labels that the ML program's classify op holds."""
    (block,) = spec.mlProgram.functions["main"].block_specializations.values()
    (classify,) = [op for op in block.operations if op.type == "classify"]
    labels = classify.inputs["classes"].arguments[0].value.immediateValue.list.values
    return [label.immediateValue.tensor.strings.values[0] for label in labels]


def test_an_rgb_classifier_with_labels_is_a_core_ml_image_classifier(tmp_path):
    model = get_model("ghostnetv3_050", input_shape=(64, 64, 3), classes=3)  # folded
    images = np.random.default_rng(0).uniform(0, 255, (4, 64, 64, 3)).astype("float32")
    report = export(model, tmp_path / "out", formats=["coreml"], check_images=images,
                    class_names=["cat", "dog", "fox"])
    entry = report["exports"]["coreml"]
    assert "check" not in entry  # not run on Linux
    assert entry["input"] == "image" and set(entry["outputs"]) == {"classLabel",
                                                                   "classLabel_probs"}
    assert entry["ops"]["conv"] == _convolutions(model)
    spec = _spec_with_image_input(tmp_path / "out" / "model.mlpackage", 64, "RGB")
    assert spec.description.predictedFeatureName == "classLabel"
    assert entry["ops"]["classify"] == 1 and _class_labels(spec) == ["cat", "dog", "fox"]
    assert json.loads((tmp_path / "out" / "export.json").read_text())["exports"]["coreml"][
        "path"].endswith("model.mlpackage")
    with pytest.raises(ArgumentError, match="Core ML runs .mlpackage files on macOS and iOS "
                                            "only"):
        load_predictor(tmp_path / "out" / "model.mlpackage")


def test_a_grayscale_model_without_labels_gives_probabilities(tmp_path):
    model = get_model("ghost_resnet20", input_shape=(28, 28, 1), classes=10, version=3)
    model.save(tmp_path / "model.keras")
    assert export_cli.main(["--model", str(tmp_path / "model.keras"), "--formats", "coreml",
                            "-o", str(tmp_path / "out")]) == 0
    entry = json.loads((tmp_path / "out" / "export.json").read_text())["exports"]["coreml"]
    assert entry["outputs"] == ["probabilities"]
    assert entry["ops"]["conv"] == _convolutions(model)
    spec = _spec_with_image_input(tmp_path / "out" / "model.mlpackage", 28, "GRAYSCALE")
    output = spec.description.output[0].type.multiArrayType
    assert list(output.shape) == [1, 10]
