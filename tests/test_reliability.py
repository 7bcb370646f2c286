"""Nothing lost, nothing silently wrong: crashes in every window of a run, two writers, damaged
state, and bad input, each ending in one line that names the file or setting
(docs/reliability.md lists them with their messages)."""
import errno
import json
import os
import re
import signal
import subprocess
import sys
import time

import keras
import numpy as np
import pytest
import yaml

from ghostnet_tf.atomic import read_json, write_atomically
from ghostnet_tf.checks import ArgumentError
from ghostnet_tf.cli import eval as eval_cli
from ghostnet_tf.cli import export as export_cli
from ghostnet_tf.cli import train as train_cli
from ghostnet_tf.data import DataSource, files, make_dataset
from ghostnet_tf.models import get_model
from ghostnet_tf.training.callbacks import read_log
from ghostnet_tf.training.config import ConfigError, dump_config, load_config
from ghostnet_tf.training.run_folder import RunInUseError
from ghostnet_tf.training.trainer import train
from tests.datasets import write_cifar, write_idx, write_image_folder, write_tfrecords
from tests.runs import read_log as read_log_rows
from tests.runs import (run_train, signal_after_first_epoch, tiny_run, wait_for_first_epoch,
                        wait_until)

QUIET = {"log": lambda *_: None}


def args_of(overrides):
    return [arg for override in overrides for arg in ("--set", override)]


# ---------------------------------------------------------------------------- 1. end of run
@pytest.mark.slow
def test_a_kill_after_the_fit_and_before_the_results_loses_no_training(tmp_path):
    # A long final validation (batches of one image) holds the end-of-run window open.
    overrides = tiny_run(tmp_path, "schedule.iterations=6", "schedule.boundaries=[4]",
                         "training.steps_per_epoch=3", "training.validation_batch_size=1",
                         per_batch=80)
    run = tmp_path / "runs" / "tiny"
    process = run_train(overrides)
    wait_until((run / "fit_done.json").exists, process)
    process.send_signal(signal.SIGKILL)
    process.wait()
    assert not (run / "results.json").exists()
    last = (run / "last.keras").read_bytes()
    rows = read_log_rows(run)
    again = run_train(overrides)
    output, _ = again.communicate(timeout=600)
    assert again.returncode == 0, output
    assert "training had finished (6 steps); writing its results from last.keras" in output
    assert "Epoch" not in output  # no step trained again
    assert (run / "last.keras").read_bytes() == last and read_log_rows(run) == rows
    results = json.loads((run / "results.json").read_text())
    assert results["steps"] == 6 and results["epochs"] == 2
    assert not (run / "backup").exists()


# ---------------------------------------------------------------------------- 2. two writers
def test_a_second_writer_is_refused_and_a_dead_ones_lock_taken_over(tmp_path):
    config = load_config(None, tiny_run(tmp_path, "schedule.iterations=2",
                                        "schedule.boundaries=[1]", "training.steps_per_epoch=2"))
    run = tmp_path / "runs" / "tiny"
    run.mkdir(parents=True)
    import socket
    (run / "run.lock").write_text(json.dumps({"pid": os.getppid(), "host": socket.gethostname()}))
    with pytest.raises(RunInUseError, match=f"in use by process {os.getppid()} on "):
        train(config, **QUIET)
    assert not (run / "config.yaml").exists()  # nothing written by the refused start
    dead = subprocess.Popen([sys.executable, "-c", "pass"])
    dead.wait()
    (run / "run.lock").write_text(json.dumps({"pid": dead.pid, "host": socket.gethostname()}))
    assert train(config, **QUIET)["steps"] == 2
    assert not (run / "run.lock").exists()  # released


def test_log_csv_with_two_writers_lines_is_read_whole(tmp_path):
    log = tmp_path / "log.csv"
    log.write_text("epoch,accuracy,loss\n0,0.5,1.0\nepoch,accuracy,loss\n0,0.6,0.9\n1,0.7,0.8\n"
                   "2,0.8")
    assert [(row["epoch"], row["loss"]) for row in read_log(log)] == [("0", "0.9"), ("1", "0.8")]


# ---------------------------------------------------------------------------- 3. damaged state
@pytest.mark.slow
def test_a_damaged_resume_state_falls_back_to_the_one_before(tmp_path):
    overrides = tiny_run(tmp_path, "schedule.iterations=400", "schedule.boundaries=[300]",
                         "training.steps_per_epoch=10", "training.backup_every_steps=4",
                         "data.batch_size=16", per_batch=80)
    run = tmp_path / "runs" / "tiny"
    signal_after_first_epoch(overrides, run, signal.SIGTERM)
    backup = run / "backup"
    saved = json.loads((backup / "training_metadata.json").read_text())
    previous = saved["previous"]["iterations"]
    weights = backup / saved["weights"]
    # What a second Ctrl-C left in Keras' in-place write: 303,000 of 4,351,296 bytes.
    weights.write_bytes(weights.read_bytes()[:weights.stat().st_size * 303 // 4351])
    shorter = overrides + ["schedule.iterations=30",
                           "training.resume_changes=[schedule.iterations]"]
    resumed = run_train(shorter)
    output, _ = resumed.communicate(timeout=600)
    assert resumed.returncode == 0, output
    assert (f"the resume state of step {saved['iterations']} in {backup} is damaged "
            f"({weights} differs from the SHA-256 saved with it)") in output
    assert f"resuming from the state of step {previous} instead" in output
    assert f"(step {previous} of 30)" in output
    assert json.loads((run / "results.json").read_text())["steps"] == 30


def small_model():
    inputs = keras.Input((8, 8, 3))
    x = keras.layers.Conv2D(4, 3, name="conv")(inputs)
    x = keras.layers.GlobalAveragePooling2D()(x)
    model = keras.Model(inputs, keras.layers.Dense(2, name="fc")(x))
    model.compile(keras.optimizers.SGD(0.1, momentum=0.9), loss="mse")
    return model


def fit_steps(model, steps, callbacks=()):
    images = np.random.default_rng(steps).normal(size=(2 * steps, 8, 8, 3)).astype("float32")
    model.fit(images, np.ones((2 * steps, 2), "float32"), batch_size=2, epochs=1, verbose=0,
              callbacks=list(callbacks))


def variables(model):
    return [keras.ops.convert_to_numpy(v) for v in model.variables]


def test_a_second_signal_raises_nothing_where_it_lands(capfd, monkeypatch):
    """A signal's handler runs wherever the main thread is: in TensorFlow's or h5py's Python
    code, a garbage-collector callback or a __del__. An exception raised there can crash the
    process (a segmentation fault in CI) or be dropped. So the second signal raises nothing
    there: called from Python, training stops at the step's end without a save; in
    train.py's own process it ends the process at once, naming the last saved state."""
    from ghostnet_tf.training.callbacks import SecondSignal, SignalStop

    class State:  # the resume state: no save may start once a second signal came
        backup_dir, saved_step = "runs/tiny/backup", 20

        def after_save(self, action):  # no save in progress
            action()

        def save(self):
            raise AssertionError("saved after a second signal")

    stop = SignalStop(State(), total_steps=100, announce=lambda *_: None)
    stop.set_model(small_model())
    with stop:
        stop._handle(signal.SIGINT, None)  # the first: stop after this step
        stop._handle(signal.SIGINT, None)  # the second returns
        with pytest.raises(SecondSignal, match="second signal 2: stopped without a save"):
            stop.on_train_batch_end(0)

    exits = []
    monkeypatch.setattr(os, "_exit", exits.append)
    monkeypatch.setattr(sys, "argv", ["train.py"])
    stop = SignalStop(State(), total_steps=100, announce=lambda *_: None, exit_process=True)
    with stop:
        stop._handle(signal.SIGTERM, None)
        stop._handle(signal.SIGINT, None)
    assert exits == [130]
    assert capfd.readouterr().err == (
        "train.py: stopped at once by a second signal 2; the last saved state (step 20) is in "
        "runs/tiny/backup: rerun the same command to resume from there.\n")
    assert signal.getsignal(signal.SIGINT) is not stop._handle  # restored on the way out


def test_a_second_signal_during_a_save_waits_for_its_end(tmp_path):
    from ghostnet_tf.training.callbacks import ResumeState

    model = small_model()
    state = ResumeState(str(tmp_path / "backup"), steps_per_epoch=100, log=lambda *_: None)
    fit_steps(model, 3, [state])  # saved at the end of the (cut) epoch: step 3
    first = read_json(tmp_path / "backup" / "training_metadata.json")
    fit_steps(model, 2)
    real_save = model.save_weights

    stops = []  # the metadata on disk when the second signal's stop ran

    def stop_now():
        stops.append(read_json(tmp_path / "backup" / "training_metadata.json"))

    def save_with_a_signal(path):
        with open(path, "wb") as handle:
            handle.write(b"half a file")
        state.after_save(stop_now)  # a second Ctrl-C
        assert not stops  # not inside the save
        real_save(path)
    model.save_weights = save_with_a_signal
    state.save()
    saved = read_json(tmp_path / "backup" / "training_metadata.json")
    assert stops == [saved]  # the stop came once the save was whole
    state.after_save(stop_now)
    assert len(stops) == 2  # and at once outside a save
    assert saved["iterations"] == 5 and saved["previous"]["iterations"] == 3
    assert sorted(os.listdir(tmp_path / "backup")) == [
        first["weights"], saved["weights"], "training_metadata.json"]
    restored = small_model()
    resumed = ResumeState(str(tmp_path / "backup"), steps_per_epoch=100, log=print)
    assert resumed.resume_point() == (0, 5)
    resumed.set_model(restored)
    resumed.on_train_begin()
    for got, want in zip(variables(restored), variables(model)):
        np.testing.assert_array_equal(got, want)

    # A kill inside the save (outside the guarded window) abandons it whole.
    def killed(path):
        with open(path, "wb") as handle:
            handle.write(b"half a file")
        raise KeyboardInterrupt("killed")
    fit_steps(model, 1)
    model.save_weights = killed
    with pytest.raises(KeyboardInterrupt):
        state.save()
    assert read_json(tmp_path / "backup" / "training_metadata.json") == saved
    assert sorted(os.listdir(tmp_path / "backup")) == [
        first["weights"], saved["weights"], "training_metadata.json"]


def test_a_resume_state_of_the_earlier_layout_resumes_and_a_damaged_one_falls_back(tmp_path,
                                                                                    capsys):
    """Run folders of earlier versions hold Keras' BackupAndRestore layout: fixed names
    written in place, with `.bkp` copies of the state before."""
    from ghostnet_tf.training.callbacks import ResumeState

    backup = tmp_path / "backup"
    backup.mkdir()
    model = small_model()
    fit_steps(model, 2)
    model.save_weights(backup / "latest.weights.h5")
    (backup / "latest.weights.h5").rename(backup / "latest.weights.h5.bkp")
    (backup / "training_metadata.json.bkp").write_text('{"epoch": 0, "batch": 2, '
                                                       '"iterations": 2}')
    earlier = variables(model)
    fit_steps(model, 3)
    model.save_weights(backup / "latest.weights.h5")
    (backup / "training_metadata.json").write_text('{"epoch": 0, "batch": 5, "iterations": 5}')

    whole = ResumeState(str(backup), steps_per_epoch=100)
    assert whole.resume_point() == (0, 5)
    weights = backup / "latest.weights.h5"
    weights.write_bytes(weights.read_bytes()[:weights.stat().st_size // 3])
    state = ResumeState(str(backup), steps_per_epoch=100)
    assert state.resume_point() == (0, 2)
    out = capsys.readouterr().out
    assert f"the resume state of step 5 in {backup} is damaged ({weights} cannot be read" in out
    assert "resuming from the state of step 2 instead" in out
    restored = small_model()
    state.set_model(restored)
    state.on_train_begin()
    for got, want in zip(variables(restored), earlier):
        np.testing.assert_array_equal(got, want)
    # The next save writes the new layout and removes the earlier one's files.
    fit_steps(restored, 1, [state])
    saved = read_json(backup / "training_metadata.json")
    assert saved["iterations"] == 3 and saved["previous"]["weights"] == "latest.weights.h5.bkp"
    assert sorted(os.listdir(backup)) == ["latest.weights.h5.bkp", saved["weights"],
                                          "training_metadata.json"]
    (backup / "latest.weights.h5.bkp").unlink()
    (backup / saved["weights"]).write_bytes(b"")
    with pytest.raises(ConfigError, match=f"the resume state in {backup} is damaged .*"
                                          f"delete {backup} to train the run again"):
        ResumeState(str(backup), steps_per_epoch=100).resume_point()


# ---------------------------------------------------------------------------- 4. export
def test_an_export_is_swapped_in_whole(tmp_path, monkeypatch):
    from ghostnet_tf import export as export_module

    model = get_model("ghost_resnet20")
    out = tmp_path / "out"
    export_module.export(model, out, ["saved_model", "float32", "float16"])
    before = sorted(os.listdir(out))
    # A failure half-way leaves the earlier export as it was.
    real = export_module.convert_tflite

    def failing(source, kind, *args):
        if kind == "float16":
            raise OSError(errno.ENOSPC, "No space left on device", "model_float16.tflite")
        return real(source, kind, *args)
    monkeypatch.setattr(export_module.litert, "convert_tflite", failing)
    with pytest.raises(OSError):
        export_module.export(model, out, ["float32", "float16"])
    assert sorted(os.listdir(out)) == before
    assert not [name for name in os.listdir(tmp_path) if name.startswith(".out.")]
    monkeypatch.setattr(export_module.litert, "convert_tflite", real)
    # One format again into the whole export: the others, and files eval.py wrote there,
    # stay byte for byte; export.json lists them all.
    (out / "model_float16.tflite.eval.json").write_text('{"top1": 0.5}')
    before = {name: _contents(out / name) for name in os.listdir(out)}
    report = export_module.export(model, out, ["float32"])
    after = {name: _contents(out / name) for name in os.listdir(out)}
    assert sorted(after) == sorted(before)
    changed = {name for name in before if after[name] != before[name]}
    assert changed <= {"export.json", "model_float32.tflite", "model_float32.tflite.check.json"}
    assert "export.json" in changed
    assert list(report["exports"]) == ["saved_model", "float32", "float16"]
    assert report["exports"]["float16"]["kept"] and "kept" not in report["exports"]["float32"]
    # Another model's export is refused, and with replace only its own files go.
    other = get_model("ghost_resnet20")
    with pytest.raises(ArgumentError, match=f"`replace` is needed: {out} holds an export of "
                                            "another model \\(its weights differ\\)"):
        export_module.export(other, out, ["float32"])
    assert {name: _contents(out / name) for name in os.listdir(out)} == after
    report = export_module.export(other, out, ["float32"], replace=True)
    assert sorted(os.listdir(out)) == ["export.json", "model_float16.tflite.eval.json",
                                       "model_float32.tflite",
                                       "model_float32.tflite.check.json",
                                       "model_float32.tflite.ops.txt"]
    assert list(report["exports"]) == ["float32"]
    # A folder of other files, or a file, is not exported into.
    (tmp_path / "photos").mkdir()
    (tmp_path / "photos" / "cat.jpg").write_bytes(b"x")
    with pytest.raises(ArgumentError, match="`output_dir` .*photos holds other files and no "
                                            "export.json"):
        export_module.export(model, tmp_path / "photos", ["float32"])
    (tmp_path / "notes.txt").write_text("x")
    with pytest.raises(ArgumentError, match="notes.txt is a file"):
        export_module.export(model, tmp_path / "notes.txt", ["float32"])


def _contents(path):
    """A file's bytes, or a folder's {relative path: bytes}."""
    if path.is_file():
        return path.read_bytes()
    return {str(file.relative_to(path)): file.read_bytes()
            for file in sorted(path.rglob("*")) if file.is_file()}


# ---------------------------------------------------------------------------- 5. epochs
def kill_at(process, metadata, low, high):
    """SIGKILL `process` once its resume state was saved at a step in (low, high), not at an
    epoch's end; returns that step."""
    def step():
        state = read_json(metadata)  # None while Keras rewrites it in place
        return state.get("iterations", 0) if isinstance(state, dict) else 0

    wait_until(lambda: low < step() < high and step() % 10, process)
    process.send_signal(signal.SIGKILL)
    process.wait()
    return step()


@pytest.mark.slow
def test_mid_epoch_resumes_keep_epochs_steps_and_images_exact(tmp_path):
    overrides = tiny_run(tmp_path, "schedule.iterations=40", "schedule.boundaries=[30]",
                         "training.steps_per_epoch=10", "training.backup_every_steps=3",
                         "data.batch_size=16", per_batch=80)
    run = tmp_path / "runs" / "tiny"
    metadata = run / "backup" / "training_metadata.json"
    # Killed in the middle of epoch 2, then again in the resumed session's first epoch,
    # before it ended any epoch: Keras' own count of that session's epochs is 0 there.
    first = kill_at(run_train(overrides), metadata, 10, 20)
    second = kill_at(run_train(overrides), metadata, first, first + 10)
    assert json.loads(metadata.read_text())["epoch"] == second // 10 == 1
    resumed = run_train(overrides)
    output, _ = resumed.communicate(timeout=600)
    assert resumed.returncode == 0, output
    assert f"resuming tiny after epoch 1 (step {second} of 40)" in output
    assert [int(row["epoch"]) for row in read_log_rows(run)] == [0, 1, 2, 3]
    results = json.loads((run / "results.json").read_text())
    assert (results["steps"], results["epochs"]) == (40, 4)
    assert json.loads((run / "progress.json").read_text())["train_images"] == 40 * 16


def final_weights(run):
    return [keras.ops.convert_to_numpy(v) for v in
            keras.saving.load_model(run / "last.keras", compile=False).weights]


@pytest.mark.slow
def test_a_sigint_stops_at_the_step_and_writes_nothing_for_the_cut_epoch(tmp_path):
    # A long validation (batches of one image) would show if the cut epoch were validated.
    overrides = tiny_run(tmp_path, "schedule.iterations=400", "schedule.boundaries=[300]",
                         "training.steps_per_epoch=200", "data.batch_size=16",
                         "training.validation_batch_size=1", per_batch=80)
    run = tmp_path / "runs" / "tiny"
    returncode, output = signal_after_first_epoch(overrides, run, signal.SIGINT)
    assert returncode == 130, output
    assert "SIGINT: stopping after this step" in output and "Traceback" not in output
    saved = json.loads((run / "backup" / "training_metadata.json").read_text())
    assert 200 < saved["iterations"] < 400 and saved["epoch"] == 1  # inside epoch 2
    assert [row["epoch"] for row in read_log_rows(run)] == ["0"]  # no row for the cut epoch
    assert json.loads((run / "best.json").read_text())["epoch"] == 1
    # The steps of the cut epoch, and their time, are counted.
    progress = json.loads((run / "progress.json").read_text())
    assert progress["train_images"] == saved["iterations"] * 16
    # The resumed run finishes the cut epoch (its remaining steps only) and logs it once.
    resumed = run_train(overrides)
    output, _ = resumed.communicate(timeout=600)
    assert resumed.returncode == 0, output
    assert f"the data stream resumes at step {saved['iterations']}" in output
    assert [row["epoch"] for row in read_log_rows(run)] == ["0", "1"]
    assert json.loads((run / "results.json").read_text())["steps"] == 400


@pytest.mark.slow
def test_seeded_runs_are_equal_and_a_stopped_one_resumes_to_the_same_weights(tmp_path):
    """Also when a second signal follows the first at any moment of the stop. The stopped
    run, another process with the same seed, is the seeded rerun: its first epoch, trained
    before the stop, must already be the first run's."""
    common = ["seed=7", "data.deterministic=true", "schedule.iterations=60",
              "schedule.boundaries=[40]", "training.steps_per_epoch=20", "data.batch_size=16"]
    runs = {name: tiny_run(tmp_path, *common, f"run_name={name}", per_batch=80)
            for name in ("first", "stopped", "other_seed")}
    runs["other_seed"].append("seed=8")
    for name in ("first", "other_seed"):
        process = run_train(runs[name])
        output, _ = process.communicate(timeout=600)
        assert process.returncode == 0, output
    returncode, output = signal_after_first_epoch(runs["stopped"], tmp_path / "runs" / "stopped",
                                                  signal.SIGTERM)
    assert returncode == 143, output
    assert not (tmp_path / "runs" / "stopped" / "results.json").exists()
    resumed = run_train(runs["stopped"])
    output, _ = resumed.communicate(timeout=600)
    assert resumed.returncode == 0, output
    step = int(re.search(r"the data stream resumes at step (\d+)", output)[1])
    assert 20 < step < 40  # cut in epoch 2, which the resume completes
    weights = {name: final_weights(tmp_path / "runs" / name) for name in runs}
    for got, want in zip(weights["stopped"], weights["first"]):
        np.testing.assert_allclose(got, want, rtol=0, atol=1e-5)
    assert max(float(np.abs(a - b).max())
               for a, b in zip(weights["other_seed"], weights["first"])) > 1e-3
    logs = {name: read_log_rows(tmp_path / "runs" / name) for name in ("first", "stopped")}
    assert [row["epoch"] for row in logs["stopped"]] == ["0", "1", "2"]
    # Every row, the cut epoch's training means included, is the uninterrupted run's.
    for cut, whole in zip(logs["stopped"], logs["first"]):
        for key, value in whole.items():
            assert abs(float(cut[key]) - float(value)) < 1e-5, (key, cut, whole)
    assert yaml.safe_load((tmp_path / "runs" / "first" / "config.yaml").read_text())["seed"] == 7
    # A second Ctrl-C soon after the first, at a range of delays: each run stops with a
    # message that is true of the state on disk, and resumes to the same weights.
    for index, delay in enumerate((0.0, 0.3)):
        name = f"second_signal_{index}"
        overrides = tiny_run(tmp_path, *common, f"run_name={name}", per_batch=80)
        run = tmp_path / "runs" / name
        process = run_train(overrides)
        wait_for_first_epoch(process, run)
        process.send_signal(signal.SIGINT)
        time.sleep(delay)
        process.send_signal(signal.SIGINT)  # nothing when the process has already left
        output, _ = process.communicate(timeout=300)
        assert process.returncode == 130 and "Traceback" not in output, output
        saved = read_json(run / "backup" / "training_metadata.json")
        said = re.search(r"at step (\d+): state saved in|the last saved state \(step (\d+)\)",
                         output)
        assert said and int(said[1] or said[2]) == saved["iterations"], output
        resumed = run_train(overrides)
        output, _ = resumed.communicate(timeout=600)
        assert resumed.returncode == 0, output
        assert f"(step {saved['iterations']} of 60)" in output
        for got, want in zip(final_weights(run), weights["first"]):
            np.testing.assert_allclose(got, want, rtol=0, atol=1e-5, err_msg=name)


# ---------------------------------------------------------------------------- 6. config
def test_a_resume_with_another_config_is_refused_and_config_yaml_kept(tmp_path):
    config = load_config(None, tiny_run(tmp_path, "schedule.iterations=2",
                                        "schedule.boundaries=[1]", "training.steps_per_epoch=2"))
    run = tmp_path / "runs" / "tiny"
    run.mkdir(parents=True)
    (run / "config.yaml").write_text(dump_config(config))
    changed = load_config(None, tiny_run(tmp_path, "schedule.iterations=2",
                                         "schedule.boundaries=[1]", "training.steps_per_epoch=2",
                                         "optimizer.lr=0.3", "model.name=resnet20"))
    with pytest.raises(ConfigError, match=r"another config \(model.name: 'ghost_resnet20' -> "
                                          r"'resnet20'; optimizer.lr: 0.05 -> 0.3\).*"
                                          r"training.resume_changes=\[model.name,optimizer.lr\]"):
        train(changed, **QUIET)
    assert yaml.safe_load((run / "config.yaml").read_text()) == config
    # Where the data are is free to change; an allowed change is taken and recorded.
    allowed = load_config(None, tiny_run(tmp_path, "schedule.iterations=2",
                                         "schedule.boundaries=[1]", "training.steps_per_epoch=2",
                                         "optimizer.lr=0.3",
                                         "training.resume_changes=[optimizer.lr]"))
    assert train(allowed, **QUIET)["learning_rate"] == pytest.approx(0.3 * 32 / 128)
    assert yaml.safe_load((run / "config.yaml").read_text())["optimizer"]["lr"] == 0.3


def test_a_first_quick_runs_mistakes_name_the_key_and_leave_no_run_folder(tmp_path, capsys):
    # One epoch of a recipe with a one-epoch warm-up.
    overrides = tiny_run(tmp_path, "schedule.name=cosine", "schedule.epochs=1",
                         "schedule.warmup_epochs=1", "training.steps_per_epoch=5")
    assert train_cli.main(args_of(overrides)) == 2
    assert capsys.readouterr().err.strip() == (
        "train.py: error: schedule.warmup_epochs 1 is 5 steps, which leaves none of the run's "
        "5 steps for the cosine decay: set schedule.warmup_epochs below 1 (e.g. --set "
        "schedule.warmup_epochs=0.2).")
    assert not (tmp_path / "runs" / "tiny").exists()  # no empty run folder left behind
    # No recipe at all.
    assert train_cli.main([]) == 2
    assert "the run has no length: set schedule.epochs or schedule.iterations, or start from " \
           "a recipe" in capsys.readouterr().err


def test_fine_tuning_says_what_it_does(tmp_path):
    from ghostnet_tf.data.files import DatasetInfo
    from ghostnet_tf.training.trainer import build_model

    frozen = load_config(None, tiny_run(tmp_path, "schedule.iterations=2",
                                        "model.freeze_backbone=true"))
    with pytest.raises(ConfigError, match="model.freeze_backbone trains the classifier alone, "
                                          "but model.weights is null"):
        train(frozen, **QUIET)
    # From a .keras file of another number of classes: the classifier is named as not copied.
    get_model("ghost_resnet20", classes=10).save(tmp_path / "ten.keras")
    config = load_config(None, tiny_run(tmp_path, "schedule.iterations=2",
                                        f"model.weights={tmp_path / 'ten.keras'}"))
    said = []
    model = build_model(config, DatasetInfo("cifar10", "train", 3, ("a", "b", "c"), 9,
                                            (32, 32, 3)), log=said.append)
    classifier = [layer.name for layer in model.layers if layer.weights][-1]
    assert said == [f"model.weights {tmp_path / 'ten.keras'}: "
                    f"{len([l for l in model.layers if l.weights]) - 1} layers copied; not "
                    f"copied (no layer of that name and shapes there): {classifier}"]
    with pytest.raises(ArgumentError, match="'ghostnet100' is not a model of the library; did "
                                            "you mean 'ghostnet_100'\\?"):
        get_model("ghostnet100")


# ---------------------------------------------------------------------------- 7, 8. data
def test_a_data_dir_given_is_the_only_place_looked(tmp_path, monkeypatch):
    system = tmp_path / "system"
    system.mkdir()
    write_idx(system, split="test")
    monkeypatch.setattr(files, "FASHION_MNIST_DIRS", (str(system),))
    assert files.load_arrays("fashion_mnist", "test")[2].num_examples == 12  # the default
    empty = tmp_path / "empty"
    empty.mkdir()
    with pytest.raises(FileNotFoundError, match=f"fashion_mnist not found in {empty} \\(the "
                                                "data_dir given\\)"):
        make_dataset(DataSource("fashion_mnist", empty), "test")
    with pytest.raises(ArgumentError, match="`data_dir` .*nowhere does not exist"):
        files.load_arrays("fashion_mnist", "test", tmp_path / "nowhere")
    config = load_config(None, ["run_name=x", "schedule.iterations=2", "data.name=fashion_mnist",
                                f"data.data_dir={tmp_path / 'nowhere'}",
                                f"training.checkpoint_dir={tmp_path}"])
    with pytest.raises(ConfigError, match="data.data_dir .*nowhere does not exist"):
        train(config, **QUIET)


def test_one_class_is_not_a_classifier(tmp_path):
    write_image_folder(tmp_path, classes=("cat",), split="train")
    with pytest.raises(ValueError, match="one class folder \\(cat\\): a classifier needs two "
                                         "classes or more"):
        make_dataset(DataSource("folder", tmp_path), "train", image_size=32)


def test_the_model_and_config_are_checked_before_any_data_is_read(tmp_path, monkeypatch):
    def no_data(*args, **kwargs):
        raise AssertionError("data were read")
    monkeypatch.setattr(files, "load_arrays", no_data)
    config = load_config(None, ["run_name=x", "schedule.iterations=2", "model.name=ghostnet_999",
                                f"training.checkpoint_dir={tmp_path}"])
    with pytest.raises(ConfigError, match="model.name 'ghostnet_999' is not a model"):
        train(config, **QUIET)
    config = load_config(None, ["run_name=x", "schedule.iterations=2", "model.name=resnet20",
                                "model.ratio=3", f"training.checkpoint_dir={tmp_path}"])
    with pytest.raises(ConfigError, match="model.ratio: resnet20 takes no ratio"):
        train(config, **QUIET)
    with pytest.raises(ConfigError, match="data.name 'cifar11' is not a dataset"):
        load_config(None, ["run_name=x", "schedule.iterations=2", "data.name=cifar11"])


# ---------------------------------------------------------------------------- 9. TFRecords
def test_train_and_evaluate_on_standard_one_based_imagenet_shards(tmp_path, capsys):
    shards = tmp_path / "shards"
    shards.mkdir()
    write_tfrecords(shards, split="train", per_shard=8)
    write_tfrecords(shards, split="validation", per_shard=6)
    config = load_config(None, [f"data.data_dir={shards}", "data.name=imagenet",
                                "data.image_size=32", "model.name=ghost_resnet20",
                                "data.batch_size=4", "schedule.iterations=4",
                                "schedule.boundaries=[2]", "run_name=shards",
                                f"training.checkpoint_dir={tmp_path / 'runs'}"])
    results = train(config, **QUIET)
    assert results["dataset"] == "imagenet" and results["steps"] == 4
    model = keras.saving.load_model(tmp_path / "runs" / "shards" / "last.keras")
    assert model.output_shape == (None, 3)  # three classes, not four (labels 1..3)
    assert eval_cli.main(["--model", str(tmp_path / "runs" / "shards" / "last.keras"),
                          "--dataset", "imagenet", "--data-dir", str(shards),
                          "--output", str(tmp_path / "eval.json")]) == 0
    report = json.loads((tmp_path / "eval.json").read_text())
    assert report["images"] == 12 and report["class_names"][0] == "n00000000"
    assert report["top1"] == pytest.approx(results["top1"], abs=1e-6)


# ---------------------------------------------------------------------------- 10. JAX
def test_tf_data_augmentations_are_refused_on_the_numpy_path(tmp_path, monkeypatch):
    from ghostnet_tf.training import trainer

    monkeypatch.setattr(trainer, "is_tensorflow", lambda: False)
    for key in ("randaugment_magnitude=9", "random_erasing=0.25", "mixup_alpha=0.2",
                "cutmix=1.0"):
        config = load_config(None, tiny_run(tmp_path, "schedule.iterations=2", f"data.{key}"))
        with pytest.raises(ConfigError, match=f"data.{key.split('=')[0]}: the .* backend's "
                                              "numpy batches have the pad-crop-flip"):
            trainer.make_data(config, 32)


# ---------------------------------------------------------------------------- 11. images
def test_a_corrupt_image_ends_training_and_evaluation_in_one_line(tmp_path, capsys):
    write_image_folder(tmp_path / "images", classes=("a", "b"), per_class=4, split="train")
    write_image_folder(tmp_path / "images", classes=("a", "b"), per_class=2, split="val")
    broken = tmp_path / "images" / "train" / "b" / "b_1.JPEG"
    broken.write_bytes(broken.read_bytes()[:40])
    overrides = [f"data.data_dir={tmp_path / 'images'}", "data.name=folder",
                 "data.image_size=32", "model.name=resnet20", "data.batch_size=2",
                 "schedule.iterations=8", "schedule.boundaries=[4]",
                 f"training.checkpoint_dir={tmp_path / 'runs'}", "run_name=broken"]
    assert train_cli.main(args_of(overrides)) == 2
    error = capsys.readouterr().err.strip().splitlines()
    assert error == [f"train.py: error: data.skip_corrupt is off and {broken} is corrupt, "
                     "truncated or not an image: remove or replace it, or turn skip_corrupt "
                     "on to skip such files with a warning."]
    get_model("resnet20", classes=2).save(tmp_path / "m.keras")
    broken_val = tmp_path / "images" / "val" / "a" / "a_0.JPEG"
    broken_val.write_bytes(b"not a jpeg at all")
    assert eval_cli.main(["--model", str(tmp_path / "m.keras"), "--dataset", "folder",
                          "--data-dir", str(tmp_path / "images")]) == 2
    assert capsys.readouterr().err.strip() == (
        f"eval.py: error: --skip-corrupt is off and {broken_val} is corrupt, truncated or "
        "not an image: remove or replace it, or turn skip_corrupt on to skip such files "
        "with a warning.")


# ---------------------------------------------------------------------------- 12. disk
def test_a_full_disk_keeps_the_file_that_was_there(tmp_path):
    target = tmp_path / "results.json"
    target.write_text("whole")

    def fill_the_disk(path):
        with open(path, "w") as handle:
            handle.write("half")
        raise OSError(errno.ENOSPC, "No space left on device", path)
    with pytest.raises(OSError):
        write_atomically(target, fill_the_disk)
    assert target.read_text() == "whole" and os.listdir(tmp_path) == ["results.json"]


def test_os_errors_end_in_one_line_naming_the_path(tmp_path, capsys, monkeypatch):
    data = tmp_path / "data"
    data.mkdir()
    write_cifar(data, "cifar10", per_batch=4)
    get_model("resnet20").save(tmp_path / "m.keras")
    report = tmp_path / "m.eval.json"

    def full(path, data):
        raise OSError(errno.ENOSPC, "No space left on device", str(path))
    monkeypatch.setattr("ghostnet_tf.evaluation.write_json", full)
    assert eval_cli.main(["--model", str(tmp_path / "m.keras"), "--dataset", "cifar10",
                          "--data-dir", str(data)]) == 2
    assert capsys.readouterr().err.strip() == f"eval.py: error: {report}: No space left on device"
    (tmp_path / "taken").write_text("a file")
    assert export_cli.main(["--model", str(tmp_path / "m.keras"), "--formats", "float32",
                            "-o", str(tmp_path / "taken")]) == 2
    assert f"--output-dir {tmp_path / 'taken'} is a file" in capsys.readouterr().err
    assert (tmp_path / "taken").read_text() == "a file"


# ---------------------------------------------------------------------------- 13. causes
def test_messages_name_the_real_cause(tmp_path, capsys):
    data = tmp_path / "data"
    data.mkdir()
    write_cifar(data, "cifar10", per_batch=4)
    get_model("resnet20").save(tmp_path / "m.keras")
    assert export_cli.main(["--model", str(tmp_path / "m.keras"), "--formats", "int8",
                            "--dataset", "cifar10", "--data-dir", str(data),
                            "--calibration-images", "0", "-o", str(tmp_path / "x")]) == 2
    assert "--calibration-images must be at least 1 for int8, got 0" in capsys.readouterr().err
    (tmp_path / "notes.keras").write_text("just text")
    assert eval_cli.main(["--model", str(tmp_path / "notes.keras"), "--dataset", "cifar10",
                          "--data-dir", str(data)]) == 2
    assert f"--model {tmp_path / 'notes.keras'} is not a .keras file" in capsys.readouterr().err


def test_the_security_probes_are_refused(tmp_path):
    # A .keras file with a Lambda layer (arbitrary code): Keras' safe mode refuses it.
    inputs = keras.Input((4,))
    outputs = keras.layers.Lambda(lambda x: x * 2)(inputs)
    keras.Model(inputs, outputs).save(tmp_path / "lambda.keras")
    from ghostnet_tf.loading import load_predictor
    with pytest.raises(ArgumentError, match="lambda.keras is not a readable .keras file: .*"
                                            "[Ll]ambda"):
        load_predictor(tmp_path / "lambda.keras")
    # A pickle that would run code on loading, as a .pth: torch's weights_only load refuses.
    import pickle

    class Payload:
        def __reduce__(self):
            return (os.system, ("touch " + str(tmp_path / "pwned"),))
    (tmp_path / "evil.pth").write_bytes(pickle.dumps({"state_dict": Payload()}))
    from ghostnet_tf.weights import read_state_dict
    with pytest.raises(ArgumentError, match="evil.pth is not a readable PyTorch checkpoint"):
        read_state_dict(tmp_path / "evil.pth")
    assert not (tmp_path / "pwned").exists()
    # A recipe with a Python tag: the safe YAML loader refuses it.
    (tmp_path / "evil.yaml").write_text(f"run_name: !!python/object/apply:os.system "
                                        f"['touch {tmp_path / 'pwned'}']\n")
    with pytest.raises(ConfigError, match="evil.yaml: not valid YAML"):
        load_config(str(tmp_path / "evil.yaml"))
    assert not (tmp_path / "pwned").exists()
