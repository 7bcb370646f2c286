"""ONNX export: the `.onnx` files run in ONNX Runtime and give the Keras model's
probabilities, for a model of each family (folded where it trains with branches), the int8
file is ONNX Runtime's QDQ quantization, and eval.py reads `.onnx` files."""
import json

import keras
import numpy as np
import onnx
import onnxruntime
import pytest

from ghostnet_tf import export_rewrites
from ghostnet_tf.checks import ArgumentError
from ghostnet_tf.cli import eval as eval_cli
from ghostnet_tf.cli import export as export_cli
from ghostnet_tf.export import ExportOptions, ONNXPredictor, export, inference_copy
from ghostnet_tf.loading import load_predictor
from ghostnet_tf.models import get_model, ghostify
from tests.datasets import write_cifar


def _random_statistics(model):
    """Random BN statistics, so that folding and export are checked on non-trivial values."""
    rng = np.random.default_rng(0)
    for variable in model.weights:
        if variable.path.endswith(("moving_mean", "beta")):
            variable.assign(rng.normal(0, 0.1, variable.shape))
        elif variable.path.endswith(("moving_variance", "gamma")):
            variable.assign(rng.uniform(0.5, 1.5, variable.shape))
    return model


@pytest.mark.parametrize("name, kwargs", [
    ("ghostnet_050", {"input_shape": (64, 64, 3)}),
    # DFC attention: 2x2 pools and nearest upsamplings of odd maps (5x5 -> 2x2 at 80x80).
    ("ghostnetv2_100", {"input_shape": (80, 80, 3)}),
    ("ghostnetv3_050", {"input_shape": (64, 64, 3)}),  # exported folded
    ("ghost_resnet20", {"input_shape": (28, 28, 1), "classes": 10, "version": 3}),
    ("vgg16", {"classes": 10}),
])
def test_onnx_gives_the_keras_models_probabilities(tmp_path, name, kwargs):
    model = _random_statistics(get_model(name, **kwargs))
    shape = model.input_shape[1:]
    images = np.random.default_rng(1).uniform(0, 255, (8,) + shape).astype("float32")
    report = export(model, tmp_path / "out", formats=["onnx"], check_images=images)
    entry = report["exports"]["onnx"]
    assert entry["check"]["top1_agreement"] == 1.0 and entry["check"]["meets_float_goal"]
    assert entry["check"]["max_probability_difference"] < 1e-5
    graph = onnx.load(entry["path"]).graph
    assert graph.input[0].name == "images"
    assert [d.dim_value for d in graph.input[0].type.tensor_type.shape.dim[1:]] == list(shape)
    # NCHW inside: tf2onnx's transpose optimizer ran (without the ONNX rewrites it fails on
    # the squeeze-excite gate and leaves a Transpose pair around every convolution).
    assert entry["ops"].get("Transpose", 0) <= 1 and entry["layout"] == "nhwc"
    # ...and it takes the input (one channel: a Reshape): the normalization runs on NCHW
    # maps (ONNX Runtime is slow to broadcast over an innermost axis of 3).
    transposes = [node.input[0] for node in graph.node if node.op_type == "Transpose"]
    assert transposes == (["images"] if shape[-1] == 3 else [])
    # Folded before export: one convolution per convolution of the deploy form, no branches.
    convolutions = sum(isinstance(layer, (keras.layers.Conv2D, keras.layers.DepthwiseConv2D))
                       for layer in _all_layers(inference_copy(model)))
    assert entry["ops"]["Conv"] == convolutions
    expected = keras.ops.convert_to_numpy(model(images, training=False))
    np.testing.assert_allclose(ONNXPredictor(entry["path"])(images), expected, atol=1e-5)


def test_nchw_onnx_has_no_transpose_and_says_how_to_feed_it(tmp_path):
    """--onnx-layout nchw: NCHW in, no Transpose at all; the metadata has the layout, the
    labels, the normalization inside and the evaluation transform; ONNXPredictor (and so
    eval.py) reads the layout from it."""
    model = _random_statistics(get_model("ghostnet_050", input_shape=(64, 64, 3), classes=3))
    images = np.random.default_rng(1).uniform(0, 255, (8, 64, 64, 3)).astype("float32")
    report = export(model, tmp_path / "out", formats=["onnx"], check_images=images,
                    class_names=["cat", "dog", "fox"],
                    options=ExportOptions(onnx_layout="nchw"))
    entry = report["exports"]["onnx"]
    assert "Transpose" not in entry["ops"] and entry["layout"] == "nchw"
    proto = onnx.load(entry["path"])
    assert [d.dim_value for d in proto.graph.input[0].type.tensor_type.shape.dim[1:]] == [
        3, 64, 64]
    metadata = {prop.key: prop.value for prop in proto.metadata_props}
    assert metadata["layout"] == "NCHW" and json.loads(metadata["labels"]) == [
        "cat", "dog", "fox"]
    inside = json.loads(metadata["normalization_inside"])  # ImageNet's, in pixel values
    np.testing.assert_allclose(inside["mean"], [123.675, 116.28, 103.53], rtol=1e-6)
    np.testing.assert_allclose(inside["std"], [58.395, 57.12, 57.375], rtol=1e-6)
    assert json.loads(metadata["eval_transform"]) == {
        "resize_short_side_to": 73, "center_crop": [64, 64], "interpolation": "bilinear",
        "crop_pct": 0.875}
    assert {opset.domain for opset in proto.opset_import} == {""}  # no unused ai.onnx.ml
    expected = keras.ops.convert_to_numpy(model(images, training=False))
    np.testing.assert_allclose(ONNXPredictor(entry["path"])(images), expected, atol=1e-5)
    session = onnxruntime.InferenceSession(entry["path"], providers=["CPUExecutionProvider"])
    np.testing.assert_allclose(
        session.run(None, {"images": images.transpose(0, 3, 1, 2)})[0], expected, atol=1e-5)


def test_a_converter_warning_fails_the_onnx_export(tmp_path, monkeypatch):
    """tf2onnx logs a failed optimization and goes on: the export fails with its message.
    Without the ONNX rewrites its transpose optimizer fails on the squeeze-excite gate."""
    monkeypatch.setattr(export_rewrites, "onnx_graph", lambda model, layout: model)
    model = get_model("ghostnet_050", input_shape=(32, 32, 3), classes=3)
    with pytest.raises(ArgumentError, match="does not convert cleanly to ONNX: tf2onnx: "
                                            "Failed to apply optimize_transpose"):
        export(model, tmp_path / "out", formats=["onnx"])
    assert not (tmp_path / "out" / "model.onnx").exists()


def _all_layers(model):
    from ghostnet_tf.compat import sublayers
    return sublayers(model, recursive=True)


def test_int8_onnx_is_quantized_and_eval_reads_onnx_files(tmp_path):
    data = tmp_path / "data"
    data.mkdir()
    write_cifar(data, "cifar10", per_batch=20)
    keras.utils.set_random_seed(1)
    _random_statistics(get_model("ghost_resnet20")).save(tmp_path / "model.keras")
    out = tmp_path / "out"
    assert export_cli.main(["--model", str(tmp_path / "model.keras"), "--dataset", "cifar10",
                            "--data-dir", str(data), "--formats", "onnx,onnx_int8",
                            "--calibration-images", "40", "--check-images", "20",
                            "-o", str(out)]) == 0
    report = json.loads((out / "export.json").read_text())
    assert list(report["exports"]) == ["onnx", "onnx_int8"]
    int8 = report["exports"]["onnx_int8"]
    assert int8["ops"]["QuantizeLinear"] > 0 and int8["ops"]["DequantizeLinear"] > 0
    proto = onnx.load(out / "model_onnx_int8.onnx")  # the opsets its nodes use, no more
    assert {o.domain for o in proto.opset_import} == {n.domain for n in proto.graph.node}
    # The softmax is float, on dequantized logits: the output rows sum to 1.
    softmax = [node for node in proto.graph.node if node.op_type == "Softmax"]
    assert [node.input[0].endswith("DequantizeLinear_Output") for node in softmax] == [True]
    assert proto.graph.output[0].name == softmax[0].output[0]
    probabilities = ONNXPredictor(out / "model_onnx_int8.onnx")(
        np.random.default_rng(2).uniform(0, 255, (4, 32, 32, 3)).astype("float32"))
    np.testing.assert_allclose(probabilities.sum(axis=1), 1.0, atol=1e-6)
    # int8 weights, one initializer per convolution; biases and per-channel scales stay
    # 32-bit (0.60x the float file for this small model).
    graph = onnx.load(out / "model_onnx_int8.onnx").graph
    initializers = {tensor.name: tensor.data_type for tensor in graph.initializer}
    producer = {output: node for node in graph.node for output in node.output}
    weights = [producer[node.input[1]] for node in graph.node if node.op_type == "Conv"]
    assert len(weights) == int8["ops"]["Conv"] and all(
        node.op_type == "DequantizeLinear"
        and initializers[node.input[0]] == onnx.TensorProto.INT8 for node in weights)
    assert int8["bytes"] < 0.65 * report["exports"]["onnx"]["bytes"]
    assert int8["check"]["images"] == 20
    assert (out / "model.onnx.check.json").is_file()
    predictor = load_predictor(out / "model.onnx")
    assert predictor.model_name == "ghost_resnet20" and predictor.class_names[0] == "airplane"
    results = {}
    for name, path in (("keras", tmp_path / "model.keras"), ("onnx", out / "model.onnx"),
                       ("onnx_int8", out / "model_onnx_int8.onnx")):
        target = tmp_path / f"{name}.eval.json"
        assert eval_cli.main(["--model", str(path), "--dataset", "cifar10", "--data-dir",
                              str(data), "--output", str(target)]) == 0
        results[name] = json.loads(target.read_text())
    assert results["onnx"]["confusion"] == results["keras"]["confusion"]
    assert results["onnx_int8"]["images"] == results["keras"]["images"] == 20


def test_onnx_int8_needs_calibration_images(tmp_path):
    model = get_model("ghost_resnet20")
    with pytest.raises(ValueError, match="onnx_int8, which is calibrated"):
        export(model, tmp_path / "out", formats=["onnx_int8"])
    (tmp_path / "bad.onnx").write_bytes(b"<html></html>")
    with pytest.raises(ValueError, match="bad.onnx is not a readable .onnx file"):
        ONNXPredictor(tmp_path / "bad.onnx")
