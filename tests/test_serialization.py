"""Every kind of `.keras` file the library writes loads in a fresh process after
`import keras, ghostnet_tf` alone (no other module of the library imported), with the same
outputs; and the command-line tools still start without Keras. (Each layer, and one model
of each registry family, is loaded so on the JAX backend by tests/test_harness.py.)"""
import json
import os
import subprocess
import sys

import keras
import numpy as np
import pytest

from ghostnet_tf.models import get_model, ghostify, reparameterize
from ghostnet_tf.training import load_config
from ghostnet_tf.training.trainer import train
from tests.runs import save_colour_teacher, tiny_run

# Loads each file named in argv[2] (a JSON list) in a process that imported keras and the
# package in the order argv[1] gives, and prints the largest output difference per file.
LOAD_SCRIPT = """
import json, sys
order = sys.argv[1]
if order == "keras first":
    import keras, ghostnet_tf
else:
    import ghostnet_tf, keras
import numpy as np
assert [m for m in sys.modules if m.startswith("ghostnet_tf.models")] == [], "models imported"
differences = {}
for path in json.loads(sys.argv[2]):
    model = keras.saving.load_model(path)
    reference = np.load(path + ".npz")
    output = keras.ops.convert_to_numpy(model(reference["x"], training=False))
    differences[path] = float(np.abs(output - reference["y"]).max())
print(json.dumps(differences))
"""


def _save_with_outputs(model, path):
    """Save `model` to `path` and, beside it, an input and the model's output for it."""
    shape = tuple(64 if size is None else size for size in model.input_shape[1:])
    x = np.random.default_rng(0).uniform(0, 255, (2,) + shape).astype("float32")
    y = keras.ops.convert_to_numpy(model(x, training=False))
    model.save(path)
    np.savez(str(path) + ".npz", x=x, y=y)
    return str(path)


def _load_in_fresh_process(paths, order):
    result = subprocess.run([sys.executable, "-c", LOAD_SCRIPT, order, json.dumps(paths)],
                            capture_output=True, text=True, timeout=900)
    assert result.returncode == 0, result.stderr[-3000:]
    return json.loads(result.stdout.strip().splitlines()[-1])


@pytest.mark.slow
def test_trained_and_transformed_keras_files_load_after_importing_the_package_alone(tmp_path):
    paths = []
    plain = get_model("resnet20", input_shape=(16, 16, 3))
    for version in (1, 2, 3):
        paths.append(_save_with_outputs(ghostify(plain, version=version),
                                        tmp_path / f"ghostified_v{version}.keras"))
    paths.append(_save_with_outputs(reparameterize(ghostify(plain, version=3)),
                                    tmp_path / "reparameterized.keras"))
    # A training run's files: one saved with its optimizer and learning-rate schedule (one
    # of the library's serializable classes), and a re-parameterizable, distilled student.
    save_colour_teacher(tmp_path / "teacher.keras")
    for run_name, extra in (("scheduled", ["schedule.name=exponential", "schedule.decay=0.9",
                                           "schedule.decay_epochs=1"]),
                            ("distilled", ["model.version=3",
                                           f"training.teacher={tmp_path / 'teacher.keras'}"])):
        train(load_config(None, tiny_run(tmp_path, f"run_name={run_name}", "schedule.epochs=1",
                                         "training.steps_per_epoch=1", *extra)),
              log=lambda *_: None)
        saved = keras.saving.load_model(tmp_path / "runs" / run_name / "last.keras")
        paths.append(_save_with_outputs(saved, tmp_path / f"run_{run_name}.keras"))
        if run_name == "scheduled":
            schedule = saved.optimizer.get_config()["learning_rate"]
            assert schedule["registered_name"] == "ghostnet_tf>WarmupStepExponentialDecay"

    for order in ("keras first", "package first"):
        differences = _load_in_fresh_process(paths, order)
        assert sorted(differences) == sorted(paths)
        assert max(differences.values()) < 1e-5, differences


def test_command_line_tools_import_without_keras():
    script = ("import sys\n"
              "import ghostnet_tf, ghostnet_tf.cli.train, ghostnet_tf.cli.eval, "
              "ghostnet_tf.cli.export, ghostnet_tf.cli.profile\n"
              "print(sorted(m for m in ('keras', 'tensorflow') if m in sys.modules))")
    result = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True,
                            timeout=300)
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == "[]"


# .keras files written by version 0.2.0 (before the refactoring of issue 29): every layer
# form of tests/test_harness.py with random batch norms, a Ghost-ResNet-20 and its GhostNetV3
# form, with their outputs on fixed inputs. Later versions must load them and agree.
RELEASED = os.path.join(os.path.dirname(os.path.abspath(__file__)), "data", "keras_0.2.0")
RELEASED_OUTPUTS = np.load(os.path.join(RELEASED, "outputs.npz"))


@pytest.mark.parametrize("name", sorted({key.split("/")[0] for key in RELEASED_OUTPUTS}))
def test_keras_files_of_version_0_2_0_load_with_the_same_outputs(name):
    model = keras.saving.load_model(os.path.join(RELEASED, f"{name}.keras"))
    x, expected = RELEASED_OUTPUTS[f"{name}/x"], RELEASED_OUTPUTS[f"{name}/y"]
    np.testing.assert_allclose(keras.ops.convert_to_numpy(model(x, training=False)), expected,
                               rtol=1e-5, atol=1e-5)
