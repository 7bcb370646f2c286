"""Helpers for the tests that train: a tiny run's overrides, train.py in a process of its own,
waiting for and signalling it, reading its log."""
import csv
import os
import socket
import subprocess
import sys
import time

import keras
import numpy as np

from tests.datasets import write_cifar

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def tiny_run(tmp_path, *extra, per_batch=64):
    """Overrides for a quick run on a learnable CIFAR-format dataset in tmp_path."""
    data = tmp_path / "data"
    if not data.exists():
        data.mkdir()
        write_cifar(data, "cifar10", per_batch=per_batch, learnable=True)
    return [f"data.data_dir={data}", f"training.checkpoint_dir={tmp_path / 'runs'}",
            "model.name=ghost_resnet20", "data.batch_size=32", "optimizer.lr=0.05",
            "run_name=tiny", *extra]


def save_colour_teacher(path):
    """A teacher that knows tiny_run's four classes (write_cifar's learnable images: the
    class's colour channel is 120 brighter, 180 red for class 3) from the channel means, as
    a .keras file: distillation from it helps, where an untrained teacher's would hinder."""
    inputs = keras.Input((32, 32, 3))
    dense = keras.layers.Dense(10, activation="softmax")
    model = keras.Model(inputs, dense(keras.layers.GlobalAveragePooling2D()(inputs)))
    kernel = np.zeros((3, 10), "float32")
    kernel[0, 0], kernel[1, 1], kernel[2, 2], kernel[0, 3] = 0.1, 0.1, 0.1, 0.2
    bias = np.full(10, -100.0, "float32")
    bias[:4] = 0.0, 0.0, 0.0, -18.0  # red 150: class 0 (15 > 12); red 210: class 3 (24 > 21)
    dense.set_weights([kernel, bias])
    model.save(path)


def read_log(run_dir):
    with open(os.path.join(run_dir, "log.csv")) as handle:
        return list(csv.DictReader(handle))


def run_train(overrides, env=None, **kwargs):
    return subprocess.Popen(
        [sys.executable, os.path.join(REPO, "train.py"),
         *[arg for override in overrides for arg in ("--set", override)]],
        cwd=REPO, env={**os.environ, **(env or {})}, stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT, text=True, **kwargs)


def wait_until(condition, process, timeout=300):
    """Return once `condition()` holds, while `process` runs."""
    deadline = time.time() + timeout
    while not condition():
        assert process.poll() is None and time.time() < deadline, process.stdout.read()
        time.sleep(0.01)


def wait_for_first_epoch(process, run):
    """Return once log.csv has its first row, i.e. as epoch 2 starts."""
    wait_until(lambda: (run / "log.csv").exists() and len(read_log(run)) >= 1, process)


def signal_after_first_epoch(overrides, run, signum):
    """Start train.py with `overrides`, send it `signum` once its first epoch is logged
    (into epoch 2), and return (exit status, output)."""
    process = run_train(overrides)
    wait_for_first_epoch(process, run)
    process.send_signal(signum)
    output, _ = process.communicate(timeout=300)
    return process.returncode, output


def free_port():
    with socket.socket() as sock:
        sock.bind(("localhost", 0))
        return sock.getsockname()[1]
