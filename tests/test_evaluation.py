import json

import keras
import numpy as np
import pytest

from ghostnet_tf.cli import eval as eval_cli
from ghostnet_tf.evaluation import evaluate_predictor
from ghostnet_tf.models import get_model
from tests.datasets import write_cifar


def test_scores_of_a_predictor_with_known_outputs():
    labels = np.array([0, 1, 2, 2, 5, 5])
    # Correct top-1 for the first four; image 4 has its class second, image 5 sixth.
    ranking = [[0, 1, 2, 3, 4, 5], [1, 0, 2, 3, 4, 5], [2, 0, 1, 3, 4, 5],
               [2, 1, 0, 3, 4, 5], [0, 5, 1, 2, 3, 4], [0, 1, 2, 3, 4, 5]]
    probabilities = np.zeros((6, 6))
    for row, order in enumerate(ranking):
        probabilities[row, order] = [0.5, 0.2, 0.1, 0.1, 0.06, 0.04]
    lookup = {i: probabilities[i] for i in range(6)}

    def predict(images):
        return np.stack([lookup[int(image[0, 0, 0])] for image in images])

    images = np.arange(6, dtype=np.float32)[:, None, None, None] * np.ones((6, 2, 2, 1))
    batches = [(images[:4], labels[:4]), (images[4:], np.eye(6)[labels[4:]])]
    result = evaluate_predictor(predict, batches, num_classes=6)
    assert result.images == 6 and result.top1 == pytest.approx(4 / 6)
    assert result.top5 == pytest.approx(5 / 6)
    assert result.per_class_accuracy == [1.0, 1.0, 1.0, 0.0, 0.0, 0.0]
    assert result.confusion[5][0] == 2 and result.confusion[2][2] == 2
    expected_loss = -np.mean(np.log([0.5, 0.5, 0.5, 0.5, 0.2, 0.04]))
    assert result.loss == pytest.approx(expected_loss)
    limited = evaluate_predictor(predict, batches, num_classes=6, limit=3)
    assert limited.images == 3 and limited.top1 == 1.0
    with pytest.raises(ValueError, match="expected \\(4, 7\\)"):
        evaluate_predictor(predict, batches, num_classes=7)


def test_eval_cli_on_a_keras_file_and_on_weights(tmp_path, capsys):
    data = tmp_path / "data"
    data.mkdir()
    write_cifar(data, "cifar10", per_batch=20)
    model = get_model("ghost_resnet20")
    model.save(tmp_path / "model.keras")
    model.save_weights(tmp_path / "model.weights.h5")
    common = ["--dataset", "cifar10", "--data-dir", str(data), "--batch-size", "8"]
    assert eval_cli.main(["--model", str(tmp_path / "model.keras"), *common]) == 0
    report = json.loads((tmp_path / "model.eval.json").read_text())
    assert (tmp_path / "model.eval.confusion.png").exists()
    assert report["images"] == 20 and len(report["per_class_accuracy"]) == 10
    assert report["runtime"] == "keras"  # what ran the file (LiteRT only for .tflite files)
    # The same images through the model directly give the same top-1.
    from ghostnet_tf.data import load_arrays
    images, labels, _ = load_arrays("cifar10", "test", data)
    predicted = keras.ops.convert_to_numpy(model(images.astype("float32"))).argmax(axis=1)
    assert report["top1"] == pytest.approx(float((predicted == labels).mean()))
    assert eval_cli.main(["--model", str(tmp_path / "model.weights.h5"), "--arch",
                          "ghost_resnet20", "--limit", "5", "--output",
                          str(tmp_path / "w.json"), *common]) == 0
    assert json.loads((tmp_path / "w.json").read_text())["images"] == 5


def test_eval_cli_errors_name_the_flag(tmp_path, capsys):
    common = ["--dataset", "cifar10", "--data-dir", str(tmp_path)]
    assert eval_cli.main(["--model", str(tmp_path / "missing.keras"), *common]) == 2
    assert "--model" in capsys.readouterr().err
    # A missing weights file is said to be missing before --arch is asked for.
    assert eval_cli.main(["--model", str(tmp_path / "gone.weights.h5"), *common]) == 2
    assert capsys.readouterr().err.strip() == (
        f"eval.py: error: --model {tmp_path / 'gone.weights.h5'}: no such file or folder.")
    data = tmp_path / "data"
    data.mkdir()
    write_cifar(data, "cifar10", per_batch=4)
    get_model("resnet20").save_weights(tmp_path / "w.weights.h5")
    args = ["--model", str(tmp_path / "w.weights.h5"), "--dataset", "cifar10",
            "--data-dir", str(data)]
    assert eval_cli.main(args) == 2
    assert "--arch is needed" in capsys.readouterr().err
    assert eval_cli.main(args + ["--arch", "resnet56"]) == 2
    assert "does not fit resnet56" in capsys.readouterr().err
    wrong = get_model("resnet20", input_shape=(28, 28, 1))
    wrong.save(tmp_path / "gray.keras")
    assert eval_cli.main(["--model", str(tmp_path / "gray.keras"), "--dataset", "cifar10",
                          "--data-dir", str(data)]) == 2
    assert "takes images of shape (28, 28, 1)" in capsys.readouterr().err
    with pytest.raises(SystemExit) as exit_info:
        eval_cli.main(args + ["--arch", "resnet20", "--limit", "0"])
    assert exit_info.value.code == 2
    assert "--limit: must be a positive integer, got 0" in capsys.readouterr().err


def test_resize_arrays_evaluates_a_larger_rgb_model_on_gray_arrays(tmp_path, capsys):
    from tests.datasets import write_idx

    write_idx(tmp_path, count=6, split="test")
    get_model("resnet20", input_shape=(36, 36, 3), classes=10).save(tmp_path / "rgb.keras")
    args = ["--model", str(tmp_path / "rgb.keras"), "--dataset", "fashion_mnist",
            "--data-dir", str(tmp_path)]
    assert eval_cli.main(args) == 2
    assert "gives (28, 28, 1); --resize-arrays" in capsys.readouterr().err
    assert eval_cli.main(args + ["--resize-arrays"]) == 0
    report = json.loads((tmp_path / "rgb.eval.json").read_text())
    assert report["images"] == 6
