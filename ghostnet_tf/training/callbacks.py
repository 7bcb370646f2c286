"""The trainer's Keras callbacks and what they write into the run folder."""
import json
import os
import signal
import tempfile
import time

import keras
import numpy as np

from ghostnet_tf.atomic import write_atomically, write_json
from ghostnet_tf.compat import BackupAndRestoreWithHooks

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
        self.best = self.best_epoch = None
        if os.path.exists(self.best_path):
            with open(self.best_path) as handle:
                saved = json.load(handle)
            self.best, self.best_epoch = saved["value"], saved["epoch"]

    def save(self, name):
        if self.write_files:
            write_atomically(os.path.join(self.run_dir, name), self.model.save)
            return
        # Other workers save too, then throw the file away: reading the synchronized
        # variables is a collective operation that every worker must join.
        with tempfile.TemporaryDirectory() as scratch:
            self.model.save(os.path.join(scratch, name))

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
    """Training seconds and images, summed over resumed sessions (progress.json)."""

    def __init__(self, path, global_batch, write_files):
        super().__init__()
        self.path, self.global_batch, self.write_files = path, global_batch, write_files
        self.state = {"train_seconds": 0.0, "train_images": 0}
        if os.path.exists(path):
            with open(path) as handle:
                self.state = json.load(handle)

    def on_epoch_begin(self, epoch, logs=None):
        self.start, self.steps = time.perf_counter(), 0

    def on_train_batch_end(self, batch, logs=None):
        self.steps += 1

    def on_epoch_end(self, epoch, logs=None):
        # Includes this epoch's validation: the wall time a user waits.
        self.state["train_seconds"] += time.perf_counter() - self.start
        self.state["train_images"] += self.steps * self.global_batch
        if self.write_files:
            write_json(self.path, self.state)


class ResumableBackup(BackupAndRestoreWithHooks):
    """BackupAndRestore that also records the optimizer step, so that a resumed run knows
    how many epochs remain (an interrupted epoch is recorded as done)."""

    def on_backup_saved(self):
        epoch, batch = self.position
        write_json(self.metadata_paths[0], {"epoch": epoch, "batch": batch,
                                            "iterations": _optimizer_step(self.model)})

    def resume_point(self):
        """(epochs done, steps done) of the saved state; (0, 0) for a fresh run."""
        for path in self.metadata_paths:
            if os.path.exists(path):
                with open(path) as handle:
                    metadata = json.load(handle)
                return metadata["epoch"], metadata.get("iterations", 0)
        return 0, 0


class NaNStop(keras.callbacks.TerminateOnNaN):
    """TerminateOnNaN that remembers why, for the final message."""

    stopped_at = None

    def on_batch_end(self, batch, logs=None):
        loss = (logs or {}).get("loss")
        if loss is not None and not np.isfinite(loss):
            self.stopped_at = batch
        super().on_batch_end(batch, logs)


class SignalStop:
    """While inside: SIGINT/SIGTERM finish the current batch, keep the resume state and stop
    training cleanly; `signal` then holds the signal's number. The previous handlers are
    restored on the way out."""

    SIGNALS = (signal.SIGINT, signal.SIGTERM)

    def __init__(self, model, backup):
        self.model, self.backup, self.signal = model, backup, None

    def _handle(self, signum, frame):
        self.signal = signum
        self.backup.delete_checkpoint = False  # keep the state for the next run
        self.model.stop_training = True

    def __enter__(self):
        self.previous = {signum: signal.getsignal(signum) for signum in self.SIGNALS}
        for signum in self.SIGNALS:
            signal.signal(signum, self._handle)
        return self

    def __exit__(self, *exc_info):
        for signum, handler in self.previous.items():
            signal.signal(signum, handler)


def save_curves(csv_path, png_path):
    """Loss and accuracy per epoch from log.csv, as a PNG."""
    import csv

    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    with open(csv_path) as handle:
        rows = list(csv.DictReader(handle))
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
