"""The run folder's own bookkeeping: one writer at a time (run.lock), the config a run was
started with and the changes a resume may make to it, and the mark of a finished fit."""
import contextlib
import json
import os
import socket

from ghostnet_tf.atomic import read_json, write_json
from ghostnet_tf.training.config import ConfigError, flatten
from ghostnet_tf.training.schema import DEFAULTS, FREE_KEYS

LOCK_FILE = "run.lock"
FIT_DONE_FILE = "fit_done.json"  # written when the last step's epoch ended, before cleanup
# Keys a resume may change freely: where the data are, how often state is saved, how
# validation is batched. They do not make the run another run.
class RunInUseError(OSError):
    """The run folder is held by another live process (an OSError: the folder is busy, as
    the command-line tools report it)."""


class RunLock:
    """While inside, this process holds `run_dir/run.lock` (its PID and host). A second
    start refuses and names the holder; a lock left by a process of this host that is gone
    is taken over."""

    def __init__(self, run_dir):
        self.path = os.path.join(run_dir, LOCK_FILE)
        self.me = {"pid": os.getpid(), "host": socket.gethostname()}

    def __enter__(self):
        self.made_folder = not os.path.isdir(os.path.dirname(self.path))
        os.makedirs(os.path.dirname(self.path), exist_ok=True)
        while True:
            try:
                descriptor = os.open(self.path, os.O_CREAT | os.O_EXCL | os.O_WRONLY)
            except FileExistsError:
                holder = read_json(self.path) or {}
                if self._is_alive(holder):
                    raise RunInUseError(
                        f"run folder {os.path.dirname(self.path)} is in use by process "
                        f"{holder.get('pid')} on {holder.get('host')} ({self.path}); wait for "
                        "it, or choose another run_name. If that process is gone (another "
                        "machine cannot be checked from here), delete the lock file.") \
                        from None
                # Left by a dead process, or half-written: take it over.
                try:
                    os.remove(self.path)
                except FileNotFoundError:
                    pass
                continue
            with os.fdopen(descriptor, "w") as handle:
                json.dump(self.me, handle)
            return self

    def _is_alive(self, holder):
        if not holder:
            return False  # empty or damaged: its writer died while writing it
        if holder.get("host") != self.me["host"]:
            return True  # cannot tell from here
        try:
            os.kill(int(holder["pid"]), 0)
        except ProcessLookupError:
            return False
        except PermissionError:
            return True
        return True

    def __exit__(self, *exc_info):
        if (read_json(self.path) or {}) == self.me:
            os.remove(self.path)
        if self.made_folder:  # a run that failed before writing anything leaves no folder
            with contextlib.suppress(OSError):
                os.rmdir(os.path.dirname(self.path))  # only when empty


def check_resumed_config(config, saved):
    """Raise ConfigError when `config` would make the run saved with `saved` (its
    config.yaml) another run: every differing key outside FREE_KEYS must be listed in
    training.resume_changes, the documented way to extend or adjust a run."""
    # A key the saved config lacks came with a newer version of the library: its default.
    new, old = flatten(config), {**flatten(DEFAULTS), **flatten(saved)}
    allowed = set(config["training"]["resume_changes"] or ())
    changed = sorted(key for key in set(new) | set(old)
                     if new.get(key) != old.get(key) and key not in FREE_KEYS)
    refused = [key for key in changed if key not in allowed]
    if refused:
        details = "; ".join(f"{key}: {old.get(key)!r} -> {new.get(key)!r}" for key in refused)
        raise ConfigError(
            f"run {config['run_name']!r} was started with another config ({details}). Resume "
            "it with its own config, choose another run_name, or, to extend or adjust the run "
            "on purpose, allow the changes: training.resume_changes="
            f"[{','.join(refused)}].")
    return changed


def fit_done(run_dir):
    """The mark of a finished fit (dict), or None."""
    return read_json(os.path.join(run_dir, FIT_DONE_FILE))


def mark_fit_done(run_dir, steps):
    write_json(os.path.join(run_dir, FIT_DONE_FILE), {"steps": steps})
