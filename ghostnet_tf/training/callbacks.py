"""The trainer's Keras callbacks and what they write into the run folder."""
import os
import shutil
import signal
import tempfile
import time

import keras
import numpy as np

from ghostnet_tf.atomic import read_json, write_atomically, write_json
from ghostnet_tf.compat import BackupAndRestoreWithHooks
from ghostnet_tf.training.config import ConfigError
from ghostnet_tf.training.distillation import student_of
from ghostnet_tf.training.run_folder import mark_fit_done

MONITOR = "val_accuracy"


def _optimizer_step(model):
    return int(keras.ops.convert_to_numpy(model.optimizer.iterations))


class StopAtStep(keras.callbacks.Callback):
    """Stop after exactly `total_steps` optimizer steps (schedules count iterations)."""

    def __init__(self, total_steps):
        super().__init__()
        self.total_steps = total_steps

    def on_train_batch_end(self, batch, logs=None):
        if _optimizer_step(self.model) >= self.total_steps:
            self.model.stop_training = True


class RunCheckpoints(keras.callbacks.Callback):
    """last.keras every epoch and best.keras on improvement, both written atomically, and
    best.json, so that the best value survives a resume."""

    def __init__(self, run_dir, write_files, monitor=MONITOR):
        super().__init__()
        self.run_dir, self.write_files, self.monitor = run_dir, write_files, monitor
        self.best_path = os.path.join(run_dir, "best.json")
        saved = read_json(self.best_path) or {"value": None, "epoch": None}
        self.best, self.best_epoch = saved["value"], saved["epoch"]

    def save(self, name):
        model = student_of(self.model)  # a distilled run's student, without its teacher
        if self.write_files:
            write_atomically(os.path.join(self.run_dir, name), model.save)
            return
        # Other workers save too, then throw the file away: reading the synchronized
        # variables is a collective operation that every worker must join.
        with tempfile.TemporaryDirectory() as scratch:
            model.save(os.path.join(scratch, name))

    def on_epoch_end(self, epoch, logs=None):
        self.save("last.keras")
        value = (logs or {}).get(self.monitor)
        if value is not None and (self.best is None or value > self.best):
            self.best, self.best_epoch = float(value), epoch + 1
            self.save("best.keras")
            if self.write_files:
                write_json(self.best_path, {"monitor": self.monitor, "value": self.best,
                                            "epoch": self.best_epoch})


class Progress(keras.callbacks.Callback):
    """Training seconds, summed over resumed sessions, and images, from the optimizer's step
    (progress.json): a resumed epoch counts each step once."""

    def __init__(self, path, global_batch, write_files):
        super().__init__()
        self.path, self.global_batch, self.write_files = path, global_batch, write_files
        self.state = read_json(path) or {"train_seconds": 0.0, "train_images": 0}
        self.start = None  # when the epoch in progress began

    def on_epoch_begin(self, epoch, logs=None):
        self.start = time.perf_counter()

    def on_epoch_end(self, epoch, logs=None):
        # Includes this epoch's validation: the wall time a user waits.
        self.save()

    def save(self):
        """Add the time since the epoch began and write progress.json: at each epoch's end,
        and when a stop cuts an epoch (its steps count, and so does their time)."""
        if self.start is None:
            return
        now = time.perf_counter()
        self.state["train_seconds"] += now - self.start
        self.start = now
        self.state["train_images"] = _optimizer_step(self.model) * self.global_batch
        if self.write_files:
            write_json(self.path, self.state)


class FitDone(keras.callbacks.Callback):
    """Marks the run folder when the epoch of the last step has ended (placed after the
    callbacks that write checkpoints and logs): from then on a rerun only completes the
    bookkeeping, even once the resume state is gone."""

    def __init__(self, run_dir, total_steps, write_files):
        super().__init__()
        self.run_dir, self.total_steps, self.write_files = run_dir, total_steps, write_files

    def on_epoch_end(self, epoch, logs=None):
        if self.write_files and _optimizer_step(self.model) >= self.total_steps:
            mark_fit_done(self.run_dir, _optimizer_step(self.model))


class ResumableBackup(BackupAndRestoreWithHooks):
    """BackupAndRestore whose saved position comes from the optimizer's step: epochs done =
    step // steps_per_epoch (Keras counts the epochs of the current session, so a state saved
    in the middle of a resumed session's first epoch would send the next resume back to
    epoch 0). It falls back to the previous copy of its state when a kill left the current
    one damaged (Keras does so for the weights, not for its JSON). The state is kept when
    fit ends; the trainer removes it once the run is recorded."""

    def __init__(self, backup_dir, steps_per_epoch, **kwargs):
        super().__init__(backup_dir, double_checkpoint=True, delete_checkpoint=False, **kwargs)
        self.steps_per_epoch = steps_per_epoch
        self._epoch_logs = {}  # the running training means of the current epoch
        self._carried = None  # those of a cut epoch, saved with the state, and its steps

    def on_train_batch_end(self, batch, logs=None):
        # Before the save that super() may make.
        self._epoch_logs = self._whole_epoch(dict(logs or {}), batch + 1)
        super().on_train_batch_end(batch, logs)

    def on_epoch_end(self, epoch, logs=None):
        if self._carried is not None and logs is not None:
            # In place, before the callbacks after this one (log.csv, TensorBoard, the
            # checkpoints) read the epoch's logs.
            logs.update({key: self._epoch_logs[key] for key in self._carried[0]
                         if key in logs and key in self._epoch_logs})
            self._carried = None
        super().on_epoch_end(epoch, logs)
        if self.save_freq != "epoch":  # every N steps, and at every epoch's end as well
            self.save_now()

    def _whole_epoch(self, logs, steps):
        """The running training means over the epoch's steps so far: in a resumed cut
        epoch, those saved at the cut merged with this session's (Keras' running means start
        again with the session, and would cover only the resumed steps)."""
        if self._carried is None:
            return logs
        carried, done = self._carried
        return {**logs, **{key: (value * done + float(logs[key]) * steps) / (done + steps)
                           for key, value in carried.items()
                           if key in logs and not key.startswith("val_")}}

    def on_backup_saved(self):
        step = _optimizer_step(self.model)
        state = {"epoch": step // self.steps_per_epoch, "batch": step % self.steps_per_epoch,
                 "iterations": step}
        if state["batch"]:  # cut in an epoch: its running means so far, for the resume
            state["epoch_logs"] = {key: float(value) for key, value in self._epoch_logs.items()
                                   if np.ndim(value) == 0}
        write_json(self.metadata_paths[0], state)

    def resume_point(self):
        """(epochs done, steps done) of the saved state; (0, 0) for a fresh run. A damaged
        state file is replaced by its previous copy, with the weights saved with it."""
        current, previous = self.metadata_paths
        if not os.path.exists(current) and not os.path.exists(previous):
            return 0, 0
        metadata = read_json(current)
        if not _is_state(metadata):
            metadata = read_json(previous)
            if not _is_state(metadata):
                raise ConfigError(
                    f"the resume state in {self.backup_dir} is damaged ({current} and its "
                    f"copy {previous} cannot be read): delete {self.backup_dir} to train the "
                    "run again from its start.")
            weights, previous_weights = self.weights_paths
            if os.path.exists(previous_weights):
                shutil.copyfile(previous_weights, weights)
            write_json(current, metadata)
        if metadata.get("batch") and metadata.get("epoch_logs"):
            self._carried = (metadata["epoch_logs"], metadata["batch"])
        return metadata["epoch"], metadata.get("iterations", 0)

    def remove(self):
        shutil.rmtree(self.backup_dir, ignore_errors=True)


def _is_state(metadata):
    return isinstance(metadata, dict) and isinstance(metadata.get("epoch"), int)


class NaNStop(keras.callbacks.TerminateOnNaN):
    """TerminateOnNaN that remembers why, for the final message."""

    stopped_at = None

    def on_batch_end(self, batch, logs=None):
        loss = (logs or {}).get("loss")
        if loss is not None and not np.isfinite(loss):
            self.stopped_at = batch
        super().on_batch_end(batch, logs)


class StopRequested(Exception):
    """Raised out of `fit` by `SignalStop` once the step in progress has finished."""


class SignalStop(keras.callbacks.Callback):
    """While inside: the first SIGINT/SIGTERM is announced at once; the training step in
    progress finishes, the resume state is saved at that step, and `fit` is left before any
    validation or epoch-end write (no log row, metrics or checkpoint of the cut epoch):
    `StopRequested` is raised, and `signal` holds the signal's number. A signal during
    validation stops it the same way, after the epoch's last step. A second signal stops at
    once (KeyboardInterrupt): every file is written whole or not at all, and the resume
    state keeps its previous copy. The previous handlers are restored on the way out."""

    SIGNALS = (signal.SIGINT, signal.SIGTERM)

    def __init__(self, backup, total_steps, announce):
        super().__init__()
        self.backup, self.total_steps, self.announce = backup, total_steps, announce
        self.signal = None

    def _handle(self, signum, frame):
        if self.signal is not None:
            raise KeyboardInterrupt(f"second signal {signum}: stopped at once")
        self.signal = signum
        self.announce(f"{signal.Signals(signum).name}: stopping after this step and saving "
                      "the resume state (a second signal stops at once)")

    def _stop_if_asked(self):
        # After the last step the epoch's end (validation, last.keras, the fit-done mark) is
        # the run's end: it runs, and the trainer stops after fit.
        if self.signal is not None and _optimizer_step(self.model) < self.total_steps:
            self.backup.save_now()
            raise StopRequested(self.signal)

    def on_train_batch_end(self, batch, logs=None):
        self._stop_if_asked()

    def on_test_batch_end(self, batch, logs=None):
        self._stop_if_asked()

    def __enter__(self):
        self.previous = {signum: signal.getsignal(signum) for signum in self.SIGNALS}
        for signum in self.SIGNALS:
            signal.signal(signum, self._handle)
        return self

    def __exit__(self, *exc_info):
        for signum, handler in self.previous.items():
            signal.signal(signum, handler)


def read_log(csv_path):
    """The rows of log.csv, one per epoch (the last written wins), skipping repeated headers
    and lines cut short by a kill."""
    import csv

    with open(csv_path, newline="") as handle:
        lines = list(csv.reader(handle))
    if not lines:
        return []
    header, by_epoch = lines[0], {}
    for line in lines[1:]:
        if len(line) != len(header) or not line[0].isdigit():
            continue
        row = dict(zip(header, line))
        try:
            [float(value) for key, value in row.items() if key != "epoch"]
        except ValueError:
            continue
        by_epoch[int(row["epoch"])] = row
    return [by_epoch[epoch] for epoch in sorted(by_epoch)]


def save_curves(csv_path, png_path):
    """Loss and accuracy per epoch from log.csv, as a PNG."""
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    rows = read_log(csv_path)
    if not rows:
        return
    epochs = [int(row["epoch"]) + 1 for row in rows]
    figure, axes = plt.subplots(1, 2, figsize=(10, 4))
    for axis, metric in zip(axes, ("loss", "accuracy")):
        for prefix, style in (("", "-"), ("val_", "--")):
            if prefix + metric in rows[0]:
                axis.plot(epochs, [float(row[prefix + metric]) for row in rows], style,
                          label=(prefix or "train_") + metric)
        axis.set_xlabel("epoch")
        axis.set_ylabel(metric)
        axis.grid(alpha=0.3)
        axis.legend()
    figure.tight_layout()
    write_atomically(png_path, lambda path: figure.savefig(path, dpi=100, format="png"))
    plt.close(figure)
