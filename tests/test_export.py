import collections
import json
import os

import keras
import numpy as np
import pytest
import tensorflow as tf

from ghostnet_tf.cli import eval as eval_cli
from ghostnet_tf.cli import export as export_cli
from ghostnet_tf.cli import predict as predict_cli
from ghostnet_tf.data import load_arrays
from ghostnet_tf.checks import ArgumentError
from ghostnet_tf.compat import tflite_ops
from tests.internals import node_names
from ghostnet_tf.export import (ExportOptions, TFLitePredictor, balanced_images, flex_ops,
                                inference_copy, tflite_op_counts)
from ghostnet_tf.layers import GhostModule
from ghostnet_tf.models import get_model
from tests.datasets import write_cifar, write_idx

KINDS = ("float32", "float16", "dynamic_int8", "int8")


@pytest.fixture(scope="module")
def exported(tmp_path_factory):
    """A Ghost-ResNet-20 on tiny CIFAR-10 files, exported by the CLI in every format."""
    root = tmp_path_factory.mktemp("export")
    data = root / "data"
    data.mkdir()
    write_cifar(data, "cifar10", per_batch=20)
    keras.utils.set_random_seed(1)
    model = get_model("ghost_resnet20")
    # Random BN statistics, so that the exports are checked with non-trivial folding.
    for layer in model.layers:
        if isinstance(layer, keras.layers.BatchNormalization):
            layer.moving_mean.assign(np.random.default_rng(0).normal(0, 0.1, layer.moving_mean.shape))
    model.save(root / "model.keras")
    code = export_cli.main(["--model", str(root / "model.keras"), "--dataset", "cifar10",
                            "--data-dir", str(data), "--calibration-images", "40",
                            "--check-images", "20", "-o", str(root / "out")])
    assert code == 0
    return root, data, model


def test_every_export_is_written_checked_and_free_of_flex_ops(exported):
    root, _, _ = exported
    out = root / "out"
    report = json.loads((out / "export.json").read_text())
    assert list(report["exports"]) == ["saved_model", *KINDS]
    assert (out / "labels.txt").read_text().splitlines()[:2] == ["airplane", "automobile"]
    for kind in KINDS:
        content = (out / f"model_{kind}.tflite").read_bytes()
        assert flex_ops(content) == []
        check = json.loads((out / f"model_{kind}.tflite.check.json").read_text())["check"]
        assert check["images"] == 20
        if kind in ("float32", "float16"):
            assert check["top1_agreement"] >= 0.995 and check["meets_float_goal"]
    checks = {kind: entry["check"] for kind, entry in report["exports"].items()}
    assert checks["float32"]["max_probability_difference"] < 1e-5
    assert checks["float16"]["max_probability_difference"] < 1e-2
    # Quantized weights shrink the file: int8 to well under half the float32 size.
    sizes = {kind: entry["bytes"] for kind, entry in report["exports"].items() if "bytes" in entry}
    assert sizes["int8"] < 0.4 * sizes["float32"] and sizes["float16"] < 0.6 * sizes["float32"]
    assert report["exports"]["float32"]["ops"]["DEPTHWISE_CONV_2D"] == 18


def test_full_int8_has_integer_io_and_tracks_the_keras_model(exported):
    root, data, model = exported
    predictor = TFLitePredictor(str(root / "out" / "model_int8.tflite"))
    assert predictor.input["dtype"] == np.uint8 and predictor.output["dtype"] == np.uint8
    images, _, _ = load_arrays("cifar10", "test", data)
    images = images.astype("float32")
    expected = keras.ops.convert_to_numpy(model(images))
    assert np.abs(predictor(images) - expected).max() < 0.1


def test_saved_model_serving_signature_takes_uint8_and_returns_probabilities(exported):
    root, data, model = exported
    loaded = tf.saved_model.load(str(root / "out" / "saved_model"))
    serve = loaded.signatures["serving_default"]
    images, _, _ = load_arrays("cifar10", "test", data)
    assert serve.structured_input_signature[1]["images"].dtype == tf.uint8
    outputs = next(iter(serve(images=tf.constant(images)).values())).numpy()
    np.testing.assert_allclose(outputs.sum(axis=1), 1.0, atol=1e-5)
    np.testing.assert_allclose(outputs, model(images.astype("float32")), atol=1e-5)


def test_eval_cli_gives_the_same_top1_for_keras_savedmodel_and_tflite(exported):
    root, data, _ = exported
    out = root / "out"
    common = ["--dataset", "cifar10", "--data-dir", str(data)]
    results = {}
    for name, path in (("keras", root / "model.keras"), ("saved_model", out / "saved_model"),
                       ("float32", out / "model_float32.tflite"),
                       ("int8", out / "model_int8.tflite")):
        target = root / f"{name}.eval.json"
        assert eval_cli.main(["--model", str(path), "--output", str(target), *common]) == 0
        results[name] = json.loads(target.read_text())
    assert results["saved_model"]["confusion"] == results["keras"]["confusion"]
    assert results["float32"]["confusion"] == results["keras"]["confusion"]
    assert results["int8"]["images"] == 20


def test_predict_prints_top5_with_the_labels_beside_the_model(exported, capsys):
    root, data, model = exported
    images, _, _ = load_arrays("cifar10", "test", data)
    path = root / "image.png"
    path.write_bytes(tf.io.encode_png(images[3]).numpy())
    for model_path in (root / "out" / "model_float32.tflite", root / "out" / "saved_model"):
        assert predict_cli.main(["--model", str(model_path), str(path)]) == 0
        lines = capsys.readouterr().out.splitlines()
        assert lines[0] == str(path) and len(lines) == 6
        expected = keras.ops.convert_to_numpy(model(images[3:4].astype("float32")))[0]
        names = (root / "out" / "labels.txt").read_text().splitlines()
        assert lines[1].split(maxsplit=1)[1] == names[int(expected.argmax())]
        assert float(lines[1].split("%")[0]) == pytest.approx(100 * expected.max(), abs=0.01)


def test_bad_inputs_get_errors_naming_the_file_or_flag(exported, tmp_path, capsys):
    root, data, _ = exported
    keras_file = str(root / "model.keras")
    # int8 calibration with no data.
    assert export_cli.main(["--model", keras_file, "--formats", "int8",
                            "-o", str(tmp_path / "x")]) == 2
    assert "--dataset" in capsys.readouterr().err
    assert export_cli.main(["--model", str(tmp_path / "none.keras")]) == 2
    assert "--model" in capsys.readouterr().err
    # A file that is not a model.
    garbage = tmp_path / "garbage.tflite"
    garbage.write_bytes(b"not a flatbuffer at all")
    assert eval_cli.main(["--model", str(garbage), "--dataset", "cifar10",
                          "--data-dir", str(data)]) == 2
    assert "garbage.tflite is not a readable .tflite" in capsys.readouterr().err
    # A .tflite whose input (32x32x3) differs from the dataset's (28x28x1).
    mnist = tmp_path / "mnist"
    mnist.mkdir()
    write_idx(mnist, split="test")
    assert eval_cli.main(["--model", str(root / "out" / "model_float32.tflite"),
                          "--dataset", "fashion_mnist", "--data-dir", str(mnist)]) == 2
    assert "takes images of shape (32, 32, 3)" in capsys.readouterr().err
    # An image file that is not an image.
    text = tmp_path / "notes.jpg"
    text.write_text("hello")
    assert predict_cli.main(["--model", str(root / "out" / "model_float32.tflite"),
                             str(text)]) == 2
    assert "notes.jpg is not a complete JPEG" in capsys.readouterr().err
    # One bad file among good ones: the others are still predicted, and the status says so.
    good = tmp_path / "good.png"
    good.write_bytes(tf.io.encode_png(np.zeros((32, 32, 3), np.uint8)).numpy())
    assert predict_cli.main(["--model", str(root / "out" / "model_float32.tflite"),
                             str(text), str(good)]) == 1
    captured = capsys.readouterr()
    assert captured.out.splitlines()[0] == str(good) and len(captured.out.splitlines()) == 6
    assert captured.err.strip() == (f"predict.py: error: {text} is not a complete JPEG, PNG, "
                                    "BMP or GIF image.")
    assert export_cli.main(["--model", keras_file, "--formats", "float32,tensorrt",
                            "--dataset", "cifar10", "--data-dir", str(data),
                            "-o", str(tmp_path / "y")]) == 2
    assert "--formats has unknown tensorrt" in capsys.readouterr().err


def test_inference_copy_is_float32_without_augmentation():
    keras.config.set_dtype_policy("mixed_float16")
    inputs = keras.Input((16, 16, 3))
    x = keras.layers.RandomFlip(name="flip")(inputs)
    x = GhostModule(8, name="ghost")(x)
    x = keras.layers.GlobalAveragePooling2D()(x)
    outputs = keras.layers.Dense(4, activation="softmax", dtype="float32")(x)
    model = keras.Model(inputs, outputs)
    keras.config.set_dtype_policy("float32")
    copy = inference_copy(model)
    assert "flip" not in [layer.name for layer in copy.layers]
    assert {layer.dtype_policy.name for layer in copy.layers} == {"float32"}
    assert copy.get_layer("ghost").primary_conv.compute_dtype == "float32"
    images = np.random.default_rng(0).uniform(0, 255, (2, 16, 16, 3)).astype("float32")
    np.testing.assert_allclose(copy(images), model(images, training=False), atol=2e-3)
    # GhostNet's graph holds a keras.ops operation (the squeeze of its head) besides layers.
    from ghostnet_tf.models import GhostNet
    ghostnet = GhostNet(0.5, input_shape=(32, 32, 3), classes=10)
    images32 = np.random.default_rng(1).uniform(0, 255, (2, 32, 32, 3)).astype("float32")
    np.testing.assert_allclose(inference_copy(ghostnet)(images32), ghostnet(images32), atol=1e-6)
    # Inference leaves the batch-norm statistics alone.
    np.testing.assert_array_equal(copy.get_layer("ghost").primary_bn.moving_mean,
                                  model.get_layer("ghost").primary_bn.moving_mean)


def test_subclassed_models_are_refused_with_a_reason():
    class Subclassed(keras.Model):
        def __init__(self):
            super().__init__()
            self.dense = keras.layers.Dense(3)

        def call(self, inputs):
            return self.dense(inputs)

    model = Subclassed()
    model(np.ones((1, 4), "float32"))
    with pytest.raises(ValueError, match="functional or Sequential"):
        inference_copy(model)


def test_balanced_images_takes_every_class():
    labels = np.array([0] * 10 + [1] * 10 + [2] * 3)
    images = np.arange(len(labels), dtype=np.float32)[:, None, None, None]
    batches = [(images[i:i + 4], labels[i:i + 4]) for i in range(0, len(labels), 4)]
    chosen = balanced_images(batches, num_classes=3, count=9)
    # Three of each class: the first three 0s, the first three 1s, all three 2s.
    assert chosen[:, 0, 0, 0].tolist() == [0, 1, 2, 10, 11, 12, 20, 21, 22]


def test_op_counts_of_a_converted_ghost_module(tmp_path):
    from ghostnet_tf.export import convert_tflite, export_saved_model
    inputs = keras.Input((8, 8, 4))
    model = keras.Model(inputs, GhostModule(6, ratio=3)(inputs))
    export_saved_model(model, str(tmp_path / "sm"))
    ops = tflite_op_counts(convert_tflite(str(tmp_path / "sm"), "float32"))
    # 2 intrinsic maps, 4 ghost maps: nothing to cut, so no slice op.
    assert ops == {"CONCATENATION": 1, "CONV_2D": 1, "DEPTHWISE_CONV_2D": 1}
    assert os.listdir(tmp_path) == ["sm"]  # the temporary folder is gone


def test_selective_quantization_keeps_the_named_ops_in_float(exported, tmp_path):
    from ghostnet_tf.export import convert_tflite
    root, data, _ = exported
    saved_model = str(root / "out" / "saved_model")
    images, _, _ = load_arrays("cifar10", "train", data)
    images = images[:16].astype("float32")
    listed = (root / "out" / "model_float32.tflite.ops.txt").read_text().splitlines()
    first_concat = next(line.split("\t")[1] for line in listed if line.startswith("CONCAT"))
    content = convert_tflite(saved_model, "int8", images, ExportOptions(
        float_ops=["DEPTHWISE_CONV_2D", first_concat]))
    path = tmp_path / "selective.tflite"
    path.write_bytes(content)
    predictor = TFLitePredictor(str(path))
    interpreter = predictor.interpreter
    tensors = {t["index"]: t for t in interpreter.get_tensor_details()}
    dtypes = collections.defaultdict(set)
    for op in tflite_ops(interpreter):
        dtypes[op["op_name"]].add(tensors[op["outputs"][0]]["dtype"])
    assert dtypes["DEPTHWISE_CONV_2D"] == {np.float32}
    assert dtypes["CONV_2D"] == {np.int8}
    assert np.float32 in dtypes["CONCATENATION"] and np.int8 in dtypes["CONCATENATION"]


def test_per_tensor_weights_have_one_scale_per_convolution(exported):
    from ghostnet_tf.export import convert_tflite
    root, data, _ = exported
    images, _, _ = load_arrays("cifar10", "train", data)
    images = images[:16].astype("float32")

    def weight_scales(content):
        from ai_edge_litert.interpreter import Interpreter
        interpreter = Interpreter(model_content=content)
        tensors = {t["index"]: t for t in interpreter.get_tensor_details()}
        conv = next(op for op in tflite_ops(interpreter) if op["op_name"] == "CONV_2D")
        return len(tensors[conv["inputs"][1]]["quantization_parameters"]["scales"])

    saved_model = str(root / "out" / "saved_model")
    assert weight_scales(convert_tflite(saved_model, "int8", images)) == 16
    assert weight_scales(convert_tflite(saved_model, "int8", images,
                                         ExportOptions(per_channel=False))) == 1


def test_converted_ghostnet_is_one_xnnpack_graph_without_slices():
    from ai_edge_litert.interpreter import Interpreter

    from ghostnet_tf.export import convert_tflite, export_saved_model
    from ghostnet_tf.models import GhostNet
    import tempfile
    with tempfile.TemporaryDirectory() as folder:
        export_saved_model(GhostNet(0.5, input_shape=(64, 64, 3), classes=10), folder + "/sm")
        content = convert_tflite(folder + "/sm", "float32")
    ops = tflite_op_counts(content)
    # BN folded into the convolutions, every Ghost module's channels even (no slice), the
    # head a static reshape (no SHAPE/PACK).
    assert ops == {"ADD": 17, "CONCATENATION": 32, "CONV_2D": 54, "DEPTHWISE_CONV_2D": 41,
                   "FULLY_CONNECTED": 1, "MEAN": 8, "MUL": 15, "PAD": 9, "RESHAPE": 1,
                   "SOFTMAX": 1}
    interpreter = Interpreter(model_content=content, num_threads=1)
    interpreter.allocate_tensors()
    assert node_names(interpreter).count("DELEGATE") == 1


@pytest.mark.parametrize("int8_io, zero_point", [("uint8", 0), ("int8", -128)])
def test_integer_input_codes_are_the_pixels(exported, tmp_path, int8_io, zero_point):
    from ghostnet_tf.export import convert_tflite
    root, data, model = exported
    images, _, _ = load_arrays("cifar10", "train", data)
    # Calibration images that miss both ends of [0, 255]: the calibrated input range alone
    # would give a scale of about 0.75, and a client feeding pixels would be off by 25%.
    dim = (40 + 0.75 * images[:32]).astype("float32")
    content = convert_tflite(str(root / "out" / "saved_model"), "int8", dim,
                             ExportOptions(int8_io=int8_io))
    path = tmp_path / "model.tflite"
    path.write_bytes(content)
    predictor = TFLitePredictor(str(path))
    assert predictor.input["dtype"] == np.dtype(int8_io)
    assert predictor.input["quantization"] == (1.0, zero_point)
    test_images, _, _ = load_arrays("cifar10", "test", data)
    test_images = (40 + 0.75 * test_images).astype("float32")
    expected = keras.ops.convert_to_numpy(model(test_images))
    assert np.abs(predictor(test_images) - expected).max() < 0.1


def test_export_from_weights_and_arch(exported, tmp_path, capsys):
    root, data, model = exported
    model.save_weights(tmp_path / "model.weights.h5")
    weights = str(tmp_path / "model.weights.h5")
    assert export_cli.main(["--model", weights, "--formats", "float32"]) == 2
    assert "--arch is needed" in capsys.readouterr().err
    assert export_cli.main(["--model", weights, "--arch", "ghost_resnet20", "--dataset",
                            "cifar10", "--data-dir", str(data), "--formats", "float32",
                            "--check-images", "8"]) == 0
    # The default folder is beside the weights, named after them.
    report = json.loads((tmp_path / "model_export" / "export.json").read_text())
    assert report["exports"]["float32"]["check"] == {
        "images": 8, "top1_agreement": 1.0, "meets_float_goal": True,
        "max_probability_difference": pytest.approx(0, abs=1e-5)}


def test_a_float_export_below_the_agreement_goal_fails_the_command(exported, tmp_path,
                                                                   monkeypatch, capsys):
    root, data, _ = exported
    # No export can agree on more than 100% of images: every float export misses this goal.
    monkeypatch.setattr("ghostnet_tf.export.folder.FLOAT_AGREEMENT_GOAL", 1.01)
    assert export_cli.main(["--model", str(root / "model.keras"), "--dataset", "cifar10",
                            "--data-dir", str(data), "--formats", "float32,dynamic_int8",
                            "--check-images", "8", "-o", str(tmp_path / "out")]) == 1
    assert "float32 agree with the Keras model on fewer than" in capsys.readouterr().err
    report = json.loads((tmp_path / "out" / "export.json").read_text())
    assert report["exports"]["float32"]["check"]["meets_float_goal"] is False
    assert "meets_float_goal" not in report["exports"]["dynamic_int8"]["check"]


def test_a_format_is_one_table_row_and_one_target_module(tmp_path, monkeypatch):
    # A target that writes the inference copy as a .keras file and opens it again: one row
    # in the table is all it takes for export, export.json, the checks and load_predictor.
    import types

    from ghostnet_tf.export import formats
    from ghostnet_tf.export.common import Opened
    from ghostnet_tf.loading import load_predictor

    def write(model, folder, rows, conversion, step):
        step(f"writing {rows[0].file}")
        model.save(os.path.join(folder, rows[0].file))
        return {rows[0].name: {"bytes": os.path.getsize(os.path.join(folder, rows[0].file))}}

    def load(path, runtime=None):
        model = keras.saving.load_model(path)
        return Opened(lambda images: keras.ops.convert_to_numpy(model(images)),
                      tuple(model.input_shape[1:]), "float32", model.output_shape[-1], "keras")

    target = types.ModuleType("keras_copy")  # as a target module of ghostnet_tf.export
    target.SUFFIX, target.steps, target.write, target.load = ".copy.keras", len, write, load
    monkeypatch.setitem(formats.FORMAT_TABLE, "keras_copy",
                        formats.Format("keras_copy", "model.copy.keras", target))
    from ghostnet_tf.export import export

    model = get_model("resnet20", classes=4, input_shape=(32, 32, 3))
    images = np.random.default_rng(0).uniform(0, 255, (6, 32, 32, 3)).astype("float32")
    steps = []
    report = export(model, tmp_path / "out", ["keras_copy", "float32"], class_names="abcd",
                    check_images=images, progress=lambda text, done, total: steps.append(
                        (text, total)))
    # The table's order, not the request's; each file checked; steps counted right.
    assert list(report["exports"]) == ["float32", "keras_copy"]
    entry = report["exports"]["keras_copy"]
    assert entry["check"]["top1_agreement"] == 1.0 and entry["check"]["meets_float_goal"]
    assert ("writing model.copy.keras", 5) in steps and len(steps) == 5
    predictor = load_predictor(tmp_path / "out" / "model.copy.keras")
    assert predictor.runtime == "keras" and predictor.class_names == tuple("abcd")
    np.testing.assert_allclose(predictor(images), keras.ops.convert_to_numpy(model(images)),
                               atol=1e-5)
    with pytest.raises(ArgumentError, match="`formats` has unknown bogus; expected some of "
                                            "saved_model, .*, keras_copy"):
        export(model, tmp_path / "other", ["bogus"])


def _model_with_one_bad_int8_layer():
    """A small classifier whose depthwise layer loses its signal in int8 with per-tensor
    weights: the blue channel's kernel is 1000 times the others, so one weight scale rounds
    the others to zero, and the images have no blue for that kernel to see."""
    keras.utils.set_random_seed(0)
    inputs = keras.Input((16, 16, 3))
    x = keras.layers.DepthwiseConv2D(3, padding="same", name="bad")(inputs)
    x = keras.layers.Conv2D(8, 1, activation="relu", name="mix")(x)
    x = keras.layers.GlobalAveragePooling2D()(x)
    outputs = keras.layers.Dense(4, activation="softmax", name="head")(x)
    model = keras.Model(inputs, outputs)
    kernel, bias = model.get_layer("bad").get_weights()
    kernel[..., 2, 0] = 1000.0
    model.get_layer("bad").set_weights([kernel / 50, bias])
    head = model.get_layer("head")
    head_kernel, head_bias = head.get_weights()
    head.set_weights([head_kernel * 20, head_bias])  # confident, so errors move the top-1
    images = np.random.default_rng(0).uniform(0, 255, (64, 16, 16, 3)).astype("float32")
    images[..., 2] = 0
    return model, images


def test_int8_layer_report_finds_the_op_whose_float_fallback_removes_the_error(tmp_path):
    from ghostnet_tf.export import describe_int8, export, tflite_files, tflite_op_outputs
    model, images = _model_with_one_bad_int8_layer()
    options = ExportOptions(per_channel=False)
    report = export(model, tmp_path / "out", ["float32", "int8"], calibration_images=images,
                    check_images=images, options=options)
    layers = report["exports"]["int8"]["layers"]
    assert json.loads((tmp_path / "out" / "export.json").read_text())["exports"]["int8"][
        "layers"] == layers
    # Every int8 op is listed under the name --float-ops takes.
    float_names = [name for _, name in tflite_op_outputs(
        (tmp_path / "out" / "model_float32.tflite").read_bytes())]
    assert {layer["op"] for layer in layers} == {
        "DEPTHWISE_CONV_2D", "CONV_2D", "MEAN", "FULLY_CONNECTED", "SOFTMAX"}
    assert all(layer["tensor"] in float_names for layer in layers)
    worst = layers[0]
    assert worst["op"] == "DEPTHWISE_CONV_2D" and worst["sqnr_db"] < 1
    assert worst["rmse_over_scale"] > 10 * max(layer["rmse_over_scale"] for layer in layers[1:])
    # Keeping each op in float in turn: the worst one's fallback removes the most error.
    expected = model.predict(images, verbose=0)

    def error(content):
        path = tmp_path / "candidate.tflite"
        path.write_bytes(content)
        return float(np.mean((TFLitePredictor(str(path))(images) - expected) ** 2))

    full = error((tmp_path / "out" / "model_int8.tflite").read_bytes())
    fallback = {layer["tensor"]: error(tflite_files(model, ["int8"], images, options=(
        ExportOptions(per_channel=False, float_ops=[layer["tensor"]])))["int8"])
        for layer in layers}
    assert min(fallback, key=fallback.get) == worst["tensor"]
    assert fallback[worst["tensor"]] < 0.01 * full
    # The export says so loudly: the worst ops, the flags that keep them, the warning.
    advice = describe_int8(report)
    assert f"--float-ops {worst['tensor']}" in advice
    assert report["exports"]["int8"]["check"]["meets_int8_goal"] is False
    assert "WARNING: model_int8.tflite picks the Keras model's class on only" in advice
