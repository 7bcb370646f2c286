"""Phone-ready `.tflite` files: metadata, RGB input, uint8 pixels, MediaPipe as the client,
and the exact graph rewrites of ghostnet_tf.export_rewrites."""
import json

import keras
import numpy as np
import pytest

from ghostnet_tf.checks import ArgumentError
from ghostnet_tf.cli import eval as eval_cli
from ghostnet_tf.cli import export as export_cli
from ghostnet_tf.data import load_arrays
from ghostnet_tf.export import (ExportOptions, MediaPipePredictor, TFLitePredictor,
                                inference_copy, tflite_files, tflite_op_counts)
from ghostnet_tf.export_rewrites import (REWRITES, RGB_TO_GRAY, ExportGhostBottleneck,
                                         ExportGhostModule, ExportSqueezeExcite, tflite_graph)
from ghostnet_tf.layers import GhostBottleneck, GhostModule, SqueezeExcite
from ghostnet_tf.models import get_model
from ghostnet_tf.tflite_metadata import associated_files
from tests.datasets import write_idx
from tests.internals import read_metadata
from tests.numerics import randomize_batch_norms

KINDS = ("float32", "float16", "dynamic_int8", "int8")
FASHION_CLASSES = ["T-shirt/top", "Trouser", "Pullover", "Dress", "Coat", "Sandal", "Shirt",
                   "Sneaker", "Bag", "Ankle boot"]


@pytest.fixture(scope="module")
def gray_export(tmp_path_factory):
    """A grayscale Ghost-ResNet-20 on tiny Fashion-MNIST files, exported by the CLI."""
    root = tmp_path_factory.mktemp("phone")
    data = root / "data"
    data.mkdir()
    write_idx(data, 40, "train")
    write_idx(data, 40, "test")
    keras.utils.set_random_seed(2)
    model = get_model("ghost_resnet20", input_shape=(28, 28, 1))
    randomize_batch_norms(model)
    # Confident predictions, so that top-1 is not decided by rounding.
    fc = model.get_layer("fc")
    fc.kernel.assign(fc.kernel * 20.0)
    model.save(root / "model.keras")
    assert export_cli.main(["--model", str(root / "model.keras"), "--dataset", "fashion_mnist",
                            "--data-dir", str(data), "--calibration-images", "40",
                            "--check-images", "40", "-o", str(root / "out")]) == 0
    return root, data, model


def test_every_tflite_carries_the_metadata_mediapipe_reads(gray_export):
    from mediapipe.tasks.metadata import metadata_schema_py_generated as schema

    root, _, model = gray_export
    labels = (root / "out" / "labels.txt").read_bytes()
    assert labels.decode().splitlines() == FASHION_CLASSES
    for kind in KINDS:
        content = (root / "out" / f"model_{kind}.tflite").read_bytes()
        # Read with MediaPipe's own generated schema classes, not with the writer's code.
        metadata = schema.ModelMetadata.GetRootAs(read_metadata(content), 0)
        assert metadata.Name().decode() == model.name
        assert kind in metadata.Description().decode()
        assert metadata.MinParserVersion() == b"1.0.0"
        graph = metadata.SubgraphMetadata(0)
        image = graph.InputTensorMetadata(0)
        assert image.Content().ContentPropertiesType() == schema.ContentProperties.ImageProperties
        properties = schema.ImageProperties()
        properties.Init(image.Content().ContentProperties().Bytes,
                        image.Content().ContentProperties().Pos)
        assert properties.ColorSpace() == schema.ColorSpaceType.RGB
        assert (properties.DefaultSize().Width(), properties.DefaultSize().Height()) == (28, 28)
        assert (image.Stats().MinAsNumpy().tolist(), image.Stats().MaxAsNumpy().tolist()) == \
            ([0.0], [255.0])
        if kind == "int8":  # uint8 pixels: nothing for the client to normalize
            assert image.ProcessUnitsLength() == 0
        else:  # float input: MediaPipe needs normalization options; these feed [0, 255]
            unit = image.ProcessUnits(0)
            assert unit.OptionsType() == schema.ProcessUnitOptions.NormalizationOptions
            options = schema.NormalizationOptions()
            options.Init(unit.Options().Bytes, unit.Options().Pos)
            assert options.MeanAsNumpy().tolist() == [0.0]
            assert options.StdAsNumpy().tolist() == [1.0]
        output = graph.OutputTensorMetadata(0)
        assert output.Content().ContentPropertiesType() == \
            schema.ContentProperties.FeatureProperties
        attached = output.AssociatedFiles(0)
        assert attached.Name() == b"labels.txt"
        assert attached.Type() == schema.AssociatedFileType.TENSOR_AXIS_LABELS
        assert associated_files(content) == {"labels.txt": labels}


def test_files_take_rgb_and_full_int8_takes_pixels_as_codes(gray_export):
    root, data, model = gray_export
    report = json.loads((root / "out" / "export.json").read_text())
    assert report["tflite_input_shape"] == [28, 28, 3]
    int8 = TFLitePredictor(root / "out" / "model_int8.tflite")
    assert int8.input["dtype"] == np.uint8 and int8.input["quantization"] == (1.0, 0)
    float32 = TFLitePredictor(root / "out" / "model_float32.tflite")
    assert float32.input_shape == (28, 28, 3)
    # A colour image is converted to gray in the graph, with the BT.601 weights.
    rgb = np.random.default_rng(3).integers(0, 256, (8, 28, 28, 3)).astype("float32")
    gray = (rgb * np.asarray(RGB_TO_GRAY, "float32")).sum(axis=-1, keepdims=True)
    expected = keras.ops.convert_to_numpy(model(gray, training=False))
    assert np.abs(float32(rgb) - expected).max() <= 1e-5
    images, _, _ = load_arrays("fashion_mnist", "test", data)
    expected = keras.ops.convert_to_numpy(model(images.astype("float32")))
    agree = (int8(images).argmax(1) == expected.argmax(1)).mean()
    assert agree >= 0.9


def test_mediapipe_classifies_like_eval_litert_path(gray_export, tmp_path):
    """Each file in MediaPipe's ImageClassifier, the phone-side client, through eval.py."""
    root, data, _ = gray_export
    common = ["--dataset", "fashion_mnist", "--data-dir", str(data)]
    for kind in KINDS:
        path = str(root / "out" / f"model_{kind}.tflite")
        results = {}
        for runtime in ("litert", "mediapipe"):
            output = tmp_path / f"{kind}.{runtime}.json"
            assert eval_cli.main(["--model", path, "--runtime", runtime, "--output",
                                  str(output), *common]) == 0
            results[runtime] = json.loads(output.read_text())
        assert results["mediapipe"]["runtime"] == "mediapipe"
        assert results["mediapipe"]["confusion"] == results["litert"]["confusion"], kind
    # Per image, with the category names MediaPipe read from the attached labels.
    images, _, _ = load_arrays("fashion_mnist", "test", data)
    litert = TFLitePredictor(root / "out" / "model_float32.tflite")
    client = MediaPipePredictor(root / "out" / "model_float32.tflite")
    agree = (client(images).argmax(1) == litert(images).argmax(1)).mean()
    assert agree >= 0.99
    import mediapipe
    frame = mediapipe.Image(image_format=mediapipe.ImageFormat.SRGB,
                            data=np.repeat(images[0], 3, axis=-1))
    best = client.classifier.classify(frame).classifications[0].categories[0]
    assert best.category_name == FASHION_CLASSES[int(litert(images[:1]).argmax())]
    client.close()


def test_runtime_errors_name_the_flag(gray_export, capsys):
    root, data, _ = gray_export
    assert eval_cli.main(["--model", str(root / "model.keras"), "--runtime", "mediapipe",
                          "--dataset", "fashion_mnist", "--data-dir", str(data)]) == 2
    assert "--runtime mediapipe runs .tflite files only" in capsys.readouterr().err
    assert export_cli.main(["--model", str(root / "model.keras"), "--rewrites", "fold,none",
                            "--formats", "float32", "-o", str(root / "bad")]) == 2
    assert "--rewrites has unknown fold, none" in capsys.readouterr().err


# ---------------------------------------------------------------------------- rewrites
def _max_difference(model, rewrites, images, folder):
    """Largest |probability difference| of the float32 .tflite with `rewrites` against the
    Keras model, and the file's op counts."""
    content = tflite_files(model, ["float32"],
                           options=ExportOptions(rewrites=rewrites))["float32"]
    path = folder / f"{len(rewrites)}.tflite"
    path.write_bytes(content)
    expected = keras.ops.convert_to_numpy(model(images, training=False))
    return np.abs(TFLitePredictor(path)(images) - expected).max(), tflite_op_counts(content)


@pytest.mark.parametrize("name, shape", [("ghostnet_050", (224, 224, 3)),
                                         ("ghost_resnet20", (32, 32, 3)),
                                         ("ghost_resnet20", (28, 28, 1))])
def test_rewritten_graphs_compute_the_keras_model(name, shape, tmp_path):
    keras.utils.set_random_seed(4)
    model = get_model(name, input_shape=shape)
    randomize_batch_norms(model, seed=5)
    last = model.layers[-2]  # sharper probabilities: differences are not hidden in softmax
    last.kernel.assign(last.kernel * 10.0)
    images = np.random.default_rng(6).uniform(0, 255, (4,) + shape).astype("float32")
    plain, plain_ops = _max_difference(model, (), images, tmp_path)
    rewritten, ops = _max_difference(model, ("fold_input_normalization",
                                             "duplicate_ghost_modules"), images, tmp_path)
    assert plain <= 1e-5 and rewritten <= 1e-5
    # The scale of the normalization is folded into the first convolution: one MUL fewer;
    # for a grayscale model its RGB-to-gray weights too (MUL and SUM).
    gray = shape[-1] == 1
    assert ops["MUL"] == plain_ops["MUL"] - (2 if gray else 1)
    assert (plain_ops.get("SUM"), ops.get("SUM")) == ((1, None) if gray else (None, None))
    if name == "ghostnet_050":
        # The seven Ghost modules on 112x112 and 56x56 maps lose their concatenation; the
        # shift is added on a (224, 672) view (two reshapes).
        assert ops["CONCATENATION"] == plain_ops["CONCATENATION"] - 7
        assert ops["RESHAPE"] == plain_ops["RESHAPE"] + 2
    else:  # 32x32 maps: no duplicate form; one shift for R, G and B: no reshape
        assert ops.get("CONCATENATION") == plain_ops.get("CONCATENATION")
        assert ops.get("RESHAPE") == plain_ops.get("RESHAPE")


@pytest.mark.parametrize("activation, use_batch_norm", [(True, True), (False, True),
                                                        (False, False)])
def test_duplicate_form_computes_the_ghost_module(activation, use_batch_norm):
    module = GhostModule(16, ratio=2, dw_size=3, activation=activation,
                         use_batch_norm=use_batch_norm, use_bias=not use_batch_norm)
    x = np.random.default_rng(7).normal(size=(2, 12, 12, 8)).astype("float32")
    module(x)
    for variable in module.weights:
        variable.assign(np.random.default_rng(8).uniform(0.5, 1.5, variable.shape))
    expected = keras.ops.convert_to_numpy(module(x, training=False))
    rewritten = ExportGhostModule.from_config(module.get_config())
    rewritten.rewrites = ("duplicate_ghost_modules",)
    rewritten.build(x.shape)
    rewritten.set_weights(module.get_weights())
    duplicate = keras.ops.convert_to_numpy(rewritten.duplicate_form_maps(x))
    assert np.abs(duplicate - expected).max() <= 1e-5 * np.abs(expected).max()
    # Below DUPLICATE_MIN_PIXELS (12x12 here) the module computes its own form.
    np.testing.assert_array_equal(keras.ops.convert_to_numpy(rewritten(x, training=False)),
                                  expected)
    assert rewritten.can_use_duplicate_form()
    for config in ({"ratio": 3}, {"filters": 15}, {"activation": "swish"}):
        other = ExportGhostModule.from_config({**module.get_config(), **config})
        assert not other.can_use_duplicate_form()


def _delegated_partitions(content):
    from ai_edge_litert.interpreter import Interpreter

    interpreter = Interpreter(model_content=content, num_threads=1)
    interpreter.allocate_tensors()
    return [op["op_name"] for op in interpreter._get_ops_details()].count("DELEGATE")


def test_dfc_pool_as_depthwise_computes_the_pool_and_keeps_int8_in_xnnpack(tmp_path):
    # A GhostNetV2 module at 15x15: the odd last row and column are dropped, as by the pool.
    module = GhostModule(16, dfc_attention=True)
    x = np.random.default_rng(9).normal(size=(2, 15, 15, 8)).astype("float32")
    expected = keras.ops.convert_to_numpy(module(x, training=False))
    rewritten = ExportGhostModule.from_config(module.get_config())
    rewritten.rewrites = ("dfc_pool_as_depthwise",)
    rewritten.build(x.shape)
    rewritten.set_weights(module.get_weights())
    np.testing.assert_allclose(keras.ops.convert_to_numpy(rewritten.dfc_pool(x)),
                               keras.ops.convert_to_numpy(module.dfc_pool(x)), atol=1e-6)
    np.testing.assert_allclose(keras.ops.convert_to_numpy(rewritten(x, training=False)),
                               expected, atol=1e-6)

    keras.utils.set_random_seed(10)
    model = get_model("ghost_resnet20", version=2)
    randomize_batch_norms(model, seed=11)
    images = np.random.default_rng(12).uniform(0, 255, (8, 32, 32, 3)).astype("float32")
    modules = sum(isinstance(layer, GhostModule) for layer in model.layers)
    before = tflite_files(model, ["int8"], images,
                          options=ExportOptions(rewrites=()))["int8"]
    after = tflite_files(model, ["float32", "int8"], images)
    ops, before_ops = tflite_op_counts(after["int8"]), tflite_op_counts(before)
    # Every DFC pool is a depthwise convolution, and the int8 graph has fewer XNNPACK
    # partitions: each pool split it (XNNPACK has no int8 average pool).
    assert before_ops["AVERAGE_POOL_2D"] == modules and "AVERAGE_POOL_2D" not in ops
    assert ops["DEPTHWISE_CONV_2D"] == before_ops["DEPTHWISE_CONV_2D"] + modules
    assert _delegated_partitions(after["int8"]) < _delegated_partitions(before)
    path = tmp_path / "model.tflite"
    path.write_bytes(after["float32"])
    np.testing.assert_allclose(TFLitePredictor(path)(images),
                               keras.ops.convert_to_numpy(model(images, training=False)),
                               atol=1e-5)


def test_clip_gate_as_relu6_computes_the_gate_and_keeps_paddleclas_int8_in_xnnpack(tmp_path):
    se = SqueezeExcite(0.25, divisor=1, gate="clip")
    reduced = np.random.default_rng(3).normal(size=(64, 1, 1, 4)).astype("float32")
    se.build((None, 1, 1, 16))
    rewritten = ExportSqueezeExcite.from_config(se.get_config())
    rewritten.rewrites = ("clip_gate_as_relu6",)
    rewritten.build((None, 1, 1, 16))
    rewritten.set_weights(se.get_weights())
    gate = keras.ops.convert_to_numpy(se.gate(reduced))
    assert (gate == 0).any() and (gate == 1).any() and ((gate > 0) & (gate < 1)).any()
    np.testing.assert_allclose(keras.ops.convert_to_numpy(rewritten.gate(reduced)), gate,
                               atol=1e-6)

    # Two of PaddleClas's bottlenecks with squeeze-excite, in a small classifier.
    inputs = keras.Input((32, 32, 3))
    x = keras.layers.Conv2D(8, 3, strides=2, name="stem")(inputs)
    for index in range(2):
        x = GhostBottleneck(24, 16, se_ratio=0.25, se_divisor=1, se_gate="clip",
                            name=f"block_{index}")(x)
    x = keras.layers.GlobalAveragePooling2D()(x)
    outputs = keras.layers.Dense(4, activation="softmax", name="classifier")(x)
    model = randomize_batch_norms(keras.Model(inputs, outputs, name="paddle_blocks"), seed=4)
    images = np.random.default_rng(5).uniform(0, 255, (8, 32, 32, 3)).astype("float32")
    without = tflite_files(model, ["int8"], images, options=ExportOptions(
        rewrites=tuple(name for name in REWRITES if name != "clip_gate_as_relu6")))["int8"]
    files = tflite_files(model, ["float32", "int8"], images)
    # The clip converts to RELU and MINIMUM; XNNPACK has no int8 MINIMUM, so each gate split
    # the int8 graph.
    assert tflite_op_counts(without)["MINIMUM"] == 2
    assert "MINIMUM" not in tflite_op_counts(files["int8"])
    assert _delegated_partitions(files["int8"]) == 1 < _delegated_partitions(without)
    path = tmp_path / "model.tflite"
    path.write_bytes(files["float32"])
    np.testing.assert_allclose(TFLitePredictor(path)(images),
                               keras.ops.convert_to_numpy(model(images, training=False)),
                               atol=1e-5)


def test_rewrites_leave_the_users_model_alone():
    model = get_model("ghostnet_050")
    before = [v.numpy().copy() for v in model.weights]
    graph = tflite_graph(inference_copy(model))
    assert graph is not model and graph.input_shape == (None, 224, 224, 3)
    # The rewritten bottlenecks are copies: the user's keep the library's own classes.
    rewritten = [layer for layer in graph.layers if isinstance(layer, GhostBottleneck)]
    assert rewritten and all(type(layer) is ExportGhostBottleneck for layer in rewritten)
    assert all(type(layer.ghost1) is GhostModule for layer in model.layers
               if isinstance(layer, GhostBottleneck))
    assert all(np.array_equal(a, b.numpy()) for a, b in zip(before, model.weights))
    images = np.random.default_rng(0).uniform(0, 255, (2, 224, 224, 3)).astype("float32")
    np.testing.assert_allclose(keras.ops.convert_to_numpy(graph(images)),
                               keras.ops.convert_to_numpy(model(images)), atol=1e-5)


def test_models_that_cannot_be_exported_for_phones_are_refused():
    inputs = keras.Input((8, 8, 4))
    model = keras.Model(inputs, keras.layers.Dense(2)(keras.layers.Flatten()(inputs)))
    with pytest.raises(ArgumentError, match="takes 4 channels"):
        tflite_graph(model)
    with pytest.raises(ArgumentError, match="`rewrites` has unknown bogus"):
        tflite_graph(get_model("ghost_resnet20"), rewrites=("bogus",))
