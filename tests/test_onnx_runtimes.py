"""The `.onnx` files in the runtimes their users bring, as those users would run them:
OpenVINO (with its f32 precision hint; its default on CPUs with bfloat16 is bfloat16) reads
`model.onnx` and `model_onnx_int8.onnx`, and ncnn runs `model.onnx` after pnnx, ncnn's
converter, for a model of each family (GhostNetV2 at a size with odd DFC maps, GhostNetV3
folded). Random batch-norm statistics, so that the outputs depend on the image."""
import json
import shutil
import subprocess
import sys
from pathlib import Path

import keras
import numpy as np
import onnxruntime
import pytest

from ghostnet_tf.cli import eval as eval_cli
from ghostnet_tf.export import export
from ghostnet_tf.loading import load_predictor
from ghostnet_tf.models import get_model
from tests.datasets import write_cifar
from tests.test_onnx_export import _random_statistics

FAMILIES = [("ghostnet_050", 64), ("ghostnetv2_100", 80), ("ghostnetv3_050", 64)]


@pytest.fixture(scope="module", params=FAMILIES, ids=[name for name, _ in FAMILIES])
def exported(request, tmp_path_factory):
    """(export folder, check images, the Keras model's probabilities) of one family."""
    name, size = request.param
    keras.utils.set_random_seed(0)
    model = _random_statistics(get_model(name, input_shape=(size, size, 3), classes=10))
    images = np.random.default_rng(1).uniform(0, 255, (8, size, size, 3)).astype("float32")
    folder = tmp_path_factory.mktemp(name)
    export(model, folder, formats=["onnx", "onnx_int8"], check_images=images,
           calibration_images=images)
    return folder, images, keras.ops.convert_to_numpy(model(images, training=False))


def _openvino(path, images):
    import openvino

    compiled = openvino.Core().compile_model(str(path), "CPU",
                                             {"INFERENCE_PRECISION_HINT": "f32"})
    return compiled(images)[0]


def test_openvino_gives_the_keras_probabilities_and_reads_the_int8_file(exported):
    folder, images, expected = exported
    probabilities = _openvino(folder / "model.onnx", images)
    np.testing.assert_allclose(probabilities, expected, atol=1e-4, rtol=0)
    assert (probabilities.argmax(1) == expected.argmax(1)).all()
    # The int8 file: OpenVINO's int8 kernels against ONNX Runtime's, on the same QDQ scales.
    int8 = _openvino(folder / "model_onnx_int8.onnx", images)
    session = onnxruntime.InferenceSession(str(folder / "model_onnx_int8.onnx"),
                                           providers=["CPUExecutionProvider"])
    reference = session.run(None, {"images": images})[0]
    np.testing.assert_allclose(int8.sum(axis=1), 1.0, atol=1e-5)  # float softmax
    np.testing.assert_allclose(int8, reference, atol=5e-3, rtol=0)


def test_ncnn_gives_the_keras_probabilities_after_pnnx(exported, tmp_path):
    import ncnn

    folder, images, expected = exported
    shutil.copy(folder / "model.onnx", tmp_path / "model.onnx")
    pnnx = Path(sys.executable).with_name("pnnx")
    shape = ",".join(str(size) for size in (1,) + images.shape[1:])
    done = subprocess.run([str(pnnx), str(tmp_path / "model.onnx"), f"inputshape=[{shape}]"],
                          capture_output=True, text=True, timeout=300)
    log = done.stdout + done.stderr
    assert done.returncode == 0, log
    assert "ignore" not in log  # pnnx drops the ops it cannot convert, with this word
    probabilities = []
    with ncnn.Net() as net:
        net.load_param(str(tmp_path / "model.ncnn.param"))
        net.load_model(str(tmp_path / "model.ncnn.bin"))
        for image in images:
            with net.create_extractor() as extractor:
                extractor.input("in0", ncnn.Mat(np.ascontiguousarray(image[None]),
                                                batch_index=0).clone())
                _, output = extractor.extract("out0")
                probabilities.append(output.numpy(batch_index=0).reshape(-1))
    probabilities = np.stack(probabilities)
    np.testing.assert_allclose(probabilities, expected, atol=1e-4, rtol=0)
    assert (probabilities.argmax(1) == expected.argmax(1)).all()


def test_load_predictor_and_eval_run_an_onnx_file_in_openvino(exported, tmp_path, capsys):
    folder, images, expected = exported
    predictor = load_predictor(folder / "model.onnx", runtime="openvino")
    assert predictor.runtime == "openvino"
    np.testing.assert_allclose(predictor.predict(images), expected, atol=1e-4, rtol=0)
    write_cifar(tmp_path, "cifar10", per_batch=10)
    results = {}
    for runtime in ("onnxruntime", "openvino"):
        output = tmp_path / f"{runtime}.eval.json"
        assert eval_cli.main(["--model", str(folder / "model.onnx"), "--dataset", "cifar10",
                              "--data-dir", str(tmp_path), "--runtime", runtime,
                              "--resize-arrays", "--output", str(output)]) == 0
        results[runtime] = json.loads(output.read_text())
    assert results["openvino"]["images"] == 10
    assert results["openvino"]["confusion"] == results["onnxruntime"]["confusion"]
    # A .tflite runtime for an .onnx file: one line.
    assert eval_cli.main(["--model", str(folder / "model.onnx"), "--dataset", "cifar10",
                          "--data-dir", str(tmp_path), "--runtime", "mediapipe"]) == 2
    assert "--runtime mediapipe runs .tflite files only" in capsys.readouterr().err
