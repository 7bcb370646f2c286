"""The trainer's Keras callbacks and what they write into the run folder."""
import contextlib
import os
import re
import shutil
import signal
import sys
import tempfile
import time

import keras
import numpy as np

from ghostnet_tf.atomic import read_json, sha256_of, write_atomically, write_json
from ghostnet_tf.checks import first_line
from ghostnet_tf.training.config import ConfigError
from ghostnet_tf.training.distillation import student_of
from ghostnet_tf.training.run_folder import mark_fit_done

MONITOR = "val_accuracy"


def optimizer_step(model):
    return int(keras.ops.convert_to_numpy(model.optimizer.iterations))


class StopAtStep(keras.callbacks.Callback):
    """Stop after exactly `total_steps` optimizer steps (schedules count iterations)."""

    def __init__(self, total_steps):
        super().__init__()
        self.total_steps = total_steps

    def on_train_batch_end(self, batch, logs=None):
        if optimizer_step(self.model) >= self.total_steps:
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
    (progress.json): a resumed epoch counts each step once. At each epoch's end, `log` is
    told how long the rest of the run's `total_steps` should take at this session's pace."""

    def __init__(self, path, global_batch, write_files, total_steps, log):
        super().__init__()
        self.path, self.global_batch, self.write_files = path, global_batch, write_files
        self.total_steps, self.log = total_steps, log
        self.state = read_json(path) or {"train_seconds": 0.0, "train_images": 0}
        self.start = None  # when the epoch in progress began
        self.session = None  # (time, step) when this session's first epoch began

    def on_epoch_begin(self, epoch, logs=None):
        self.start = time.perf_counter()
        if self.session is None:
            self.session = (self.start, optimizer_step(self.model))

    def on_epoch_end(self, epoch, logs=None):
        # Includes this epoch's validation: the wall time a user waits.
        self.save()
        step = optimizer_step(self.model)
        began, first = self.session
        if self.write_files and first < step < self.total_steps:
            left = (time.perf_counter() - began) / (step - first) * (self.total_steps - step)
            self.log(f"step {step} of {self.total_steps}: about {_duration(left)} left")

    def save(self):
        """Add the time since the epoch began and write progress.json: at each epoch's end,
        and when a stop cuts an epoch (its steps count, and so does their time)."""
        if self.start is None:
            return
        now = time.perf_counter()
        self.state["train_seconds"] += now - self.start
        self.start = now
        self.state["train_images"] = optimizer_step(self.model) * self.global_batch
        if self.write_files:
            write_json(self.path, self.state)


def _duration(seconds):
    """A rough duration: "40 s", "12 min", "3 h 05 min"."""
    if seconds < 60:
        return f"{seconds:.0f} s"
    minutes = round(seconds / 60)
    return f"{minutes} min" if minutes < 60 else f"{minutes // 60} h {minutes % 60:02d} min"


class FitDone(keras.callbacks.Callback):
    """Marks the run folder when the epoch of the last step has ended (placed after the
    callbacks that write checkpoints and logs): from then on a rerun only completes the
    bookkeeping, even once the resume state is gone."""

    def __init__(self, run_dir, total_steps, write_files):
        super().__init__()
        self.run_dir, self.total_steps, self.write_files = run_dir, total_steps, write_files

    def on_epoch_end(self, epoch, logs=None):
        if self.write_files and optimizer_step(self.model) >= self.total_steps:
            mark_fit_done(self.run_dir, optimizer_step(self.model))


class ResumeState(keras.callbacks.Callback):
    """The run's resume state in `backup_dir`: the model's and optimizer's variables at one
    optimizer step, in a `.weights.h5` file named by that step, and `training_metadata.json`,
    which names that file with its SHA-256, the position (epochs done, batch of the epoch,
    step) and the state saved before it. Saved at each epoch's end, every `every_steps`
    steps when given, and when a stop asks (`save`); kept when fit ends (the trainer removes
    it once the run is recorded).

    A save writes the new weights file whole under a new name, then renames the new
    metadata over the old: that rename is the commit, so a kill at any moment leaves the
    last state or the new one, each whole. A second stop signal during a save waits for the
    save's end (`after_save`). On resume, a state whose file is missing or differs from its
    digest is passed over for the one before it, with a line saying so.

    The position comes from the optimizer's step: epochs done = step // steps_per_epoch
    (Keras counts the epochs of the current fit, so a state saved in a resumed session's
    first epoch would send the next resume back to epoch 0)."""

    METADATA = "training_metadata.json"

    def __init__(self, backup_dir, steps_per_epoch, every_steps=None, log=print):
        super().__init__()
        self.backup_dir, self.steps_per_epoch = backup_dir, steps_per_epoch
        self.every_steps, self.log = every_steps, log
        self.metadata_path = os.path.join(backup_dir, self.METADATA)
        self.saved = None  # the last whole state on disk (its metadata), once known
        self._restore = None  # the weights file to load when fit begins
        self._saving, self._after_save = False, None
        self._epoch_logs = {}  # the running training means of the current epoch
        self._carried = None  # those of a cut epoch, saved with the state, and its steps

    # ------------------------------------------------------------------ resume
    def resume_point(self):
        """(epochs done, steps done) of the last whole saved state, which fit then starts
        from; (0, 0) for a fresh run. ConfigError when no saved state is whole."""
        states = self._saved_states()
        if not states:
            return 0, 0
        for newer, state in zip([None] + states, states):
            problem = self._damage(state)
            if problem is None:
                break
            self.log(f"the resume state of step {state.get('iterations', '?')} in "
                     f"{self.backup_dir} is damaged ({problem}); trying the one saved "
                     "before it")
        else:
            raise ConfigError(
                f"the resume state in {self.backup_dir} is damaged ({problem}), and no "
                f"earlier one is whole: delete {self.backup_dir} to train the run again "
                "from its start.")
        if newer is not None:
            self.log(f"resuming from the state of step {state.get('iterations', 0)} instead")
        self.saved = {key: value for key, value in state.items() if key != "previous"}
        self._restore = os.path.join(self.backup_dir, state["weights"])
        if state.get("batch") and state.get("epoch_logs"):
            self._carried = (state["epoch_logs"], state["batch"])
        return state["epoch"], state.get("iterations", 0)

    def _saved_states(self):
        """The saved states, newest first, each with the name of its weights file."""
        current = read_json(self.metadata_path)
        if _is_state(current) and "weights" in current:
            return [current] + ([current["previous"]] if current.get("previous") else [])
        # Keras' BackupAndRestore layout, which earlier versions wrote: fixed names, in place,
        # with a copy of the state before.
        legacy = ((current, _LEGACY_WEIGHTS),
                  (read_json(self.metadata_path + ".bkp"), _LEGACY_WEIGHTS + ".bkp"))
        states = [{**state, "weights": name} for state, name in legacy if _is_state(state)]
        if not states and os.path.exists(self.metadata_path):
            states = [{"weights": _LEGACY_WEIGHTS}]  # unreadable: reported as damaged
        return states

    def _damage(self, state):
        """What is wrong with a saved state, or None when it is whole."""
        if not _is_state(state):
            return f"{self.metadata_path} cannot be read"
        path = os.path.join(self.backup_dir, state["weights"])
        if not os.path.isfile(path):
            return f"{path} is missing"
        if "sha256" in state:
            return None if sha256_of(path) == state["sha256"] else (
                f"{path} differs from the SHA-256 saved with it")
        return _h5_damage(path)  # earlier versions saved no digest

    def on_train_begin(self, logs=None):
        # Inside fit, so inside the distribution strategy's scope.
        if self._restore is None:
            return
        if self.model.optimizer is not None and not self.model.optimizer.built:
            self.model.optimizer.build(self.model.trainable_variables)
        if self._restore.endswith(".weights.h5"):
            self.model.load_weights(self._restore)
        else:  # an earlier version's .bkp copy: Keras reads .weights.h5 names only
            with tempfile.TemporaryDirectory() as scratch:
                copy = os.path.join(scratch, "state.weights.h5")
                shutil.copyfile(self._restore, copy)
                self.model.load_weights(copy)
        self._restore = None

    # ------------------------------------------------------------------ save
    def on_train_batch_end(self, batch, logs=None):
        self._epoch_logs = self._whole_epoch(dict(logs or {}), batch + 1)
        if self.every_steps and optimizer_step(self.model) % self.every_steps == 0:
            self.save()

    def on_epoch_end(self, epoch, logs=None):
        if self._carried is not None and logs is not None:
            # In place, before the callbacks after this one (log.csv, TensorBoard, the
            # checkpoints) read the epoch's logs.
            logs.update({key: self._epoch_logs[key] for key in self._carried[0]
                         if key in logs and key in self._epoch_logs})
            self._carried = None
        self.save()

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

    def save(self):
        """Save the state at the current step (nothing to do when it is saved already)."""
        step = optimizer_step(self.model)
        if self.saved is not None and self.saved.get("iterations") == step:
            return
        self._saving = True
        try:
            self._save(step)
        finally:
            self._saving = False
            if self._after_save is not None:
                action, self._after_save = self._after_save, None
                action()

    def _save(self, step):
        os.makedirs(self.backup_dir, exist_ok=True)
        name = f"state-{step:09d}.weights.h5"
        path = os.path.join(self.backup_dir, name)
        write_atomically(path, lambda temporary: self.model.save_weights(temporary))
        state = {"epoch": step // self.steps_per_epoch, "batch": step % self.steps_per_epoch,
                 "iterations": step, "weights": name, "sha256": sha256_of(path)}
        if state["batch"]:  # cut in an epoch: its running means so far, for the resume
            state["epoch_logs"] = {key: float(value) for key, value in self._epoch_logs.items()
                                   if np.ndim(value) == 0}
        if self.saved is not None:
            state["previous"] = self.saved
        write_json(self.metadata_path, state)  # the commit
        self.saved = {key: value for key, value in state.items() if key != "previous"}
        self._remove_unused({name, state.get("previous", {}).get("weights")})

    def _remove_unused(self, keep):
        """Remove the weights files of older states, earlier versions' copies and the
        temporary files of saves a kill cut short: only files this callback writes."""
        for name in os.listdir(self.backup_dir):
            ours = (_STATE_FILE.match(name) or name.startswith(_LEGACY_WEIGHTS)
                    or name == self.METADATA + ".bkp")
            if ours and name not in keep:
                with contextlib.suppress(OSError):
                    os.remove(os.path.join(self.backup_dir, name))

    @property
    def saved_step(self):
        """The step of the last whole state on disk; None before any."""
        return None if self.saved is None else self.saved.get("iterations", 0)

    def after_save(self, action):
        """Call `action` now, or at the end of the save in progress: a stop must not cut it."""
        if self._saving:
            self._after_save = action
        else:
            action()

    def remove(self):
        shutil.rmtree(self.backup_dir, ignore_errors=True)


_LEGACY_WEIGHTS = "latest.weights.h5"
# A state's weights file, and the temporary name it has while it is written.
_STATE_FILE = re.compile(r"^\.?state-\d+(\.partial)?\.weights\.h5$")


def _is_state(metadata):
    return isinstance(metadata, dict) and isinstance(metadata.get("epoch"), int) and \
        isinstance(metadata.get("weights", ""), str)


def _h5_damage(path):
    """What is wrong with a weights file saved without a digest, or None when each of its
    arrays reads whole."""
    import h5py

    def read(name, item):
        if isinstance(item, h5py.Dataset):
            item[()]
    try:
        with h5py.File(path, "r") as file:
            file.visititems(read)
    except (OSError, RuntimeError, KeyError, ValueError) as error:
        return f"{path} cannot be read: {first_line(error)}"
    return None


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


class SecondSignal(KeyboardInterrupt):
    """Raised out of `fit` by `SignalStop` after a second signal, without a save."""


def stop_message(signum, backup_dir, saved_step, step=None):
    """What a stop by signal `signum` left: the resume state of step `saved_step` (None:
    none yet) in `backup_dir`. `step` is where training stopped, when known; a state saved
    at that step is the stop's own, any other is the one a second signal kept."""
    if step is not None and saved_step == step:
        return (f"stopped by signal {signum} at step {step}: state saved in {backup_dir}; "
                "rerun the same command to resume.")
    where = "" if step is None else f" at step {step}"
    if saved_step is None:
        return (f"stopped at once by a second signal {signum}{where}, before any resume "
                "state was saved: rerun the same command to start the run again.")
    return (f"stopped at once by a second signal {signum}{where}; the last saved state "
            f"(step {saved_step}) is in {backup_dir}: rerun the same command to resume from "
            "there.")


def exit_status(signum):
    """128 + the signal's number, as a shell reports a process a signal ended."""
    return 128 + signum


class SignalStop(keras.callbacks.Callback):
    """While inside: the first SIGINT/SIGTERM is announced at once; the training step in
    progress finishes, the resume state is saved at that step, and `fit` is left before any
    validation or epoch-end write (no log row, metrics or checkpoint of the cut epoch):
    `StopRequested` is raised, and `signal` holds the signal's number. A signal during
    validation stops it the same way, after the epoch's last step.

    A second signal never raises where it lands (an exception thrown into TensorFlow, h5py
    or a garbage-collector callback can crash the process or be dropped). With
    `exit_process` (train.py, a process of its own) it ends the process at once, with exit
    status 128 + its number and a line on stderr naming the last saved state; a save of
    the resume state in progress ends first, and every other file is written whole or not
    at all. Otherwise (`train` called from Python, where the interpreter must live on)
    `SecondSignal` is raised at the next step's end, without a save. The previous handlers
    are restored on the way out."""

    SIGNALS = (signal.SIGINT, signal.SIGTERM)

    def __init__(self, state, total_steps, announce, exit_process=False):
        super().__init__()
        self.state, self.total_steps, self.announce = state, total_steps, announce
        self.exit_process = exit_process
        self.signal = None
        self.second = None  # the second signal's number, once one came

    def _handle(self, signum, frame):
        if self.signal is None:
            self.signal = signum
            self.announce(f"{signal.Signals(signum).name}: stopping after this step and "
                          "saving the resume state (a second signal stops at once, keeping "
                          "the last saved state)")
        elif self.second is None:
            self.second = signum
            if self.exit_process:
                self.state.after_save(self._exit_now)

    def _exit_now(self):
        message = stop_message(self.second, self.state.backup_dir, self.state.saved_step)
        # The main thread may be inside a write to these streams: a flush here can raise.
        for stream in (sys.stdout, sys.stderr):
            with contextlib.suppress(Exception):
                stream.flush()
        os.write(2, f"{os.path.basename(sys.argv[0])}: {message}\n".encode())
        os._exit(exit_status(self.second))

    def _stop_if_asked(self):
        if self.second is not None:
            raise SecondSignal(f"second signal {self.second}: stopped without a save")
        # After the last step the epoch's end (validation, last.keras, the fit-done mark) is
        # the run's end: it runs, and the trainer stops after fit.
        if self.signal is not None and optimizer_step(self.model) < self.total_steps:
            self.state.save()
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
