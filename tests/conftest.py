"""Test setup: the TensorFlow backend with two logical CPU devices.

The devices must be split before TensorFlow initializes them, so it happens here, when pytest
imports this file, before any test module runs.
"""
import os

import pytest

os.environ.setdefault("KERAS_BACKEND", "tensorflow")
# No test reaches the network: the hub and the file sites point at a closed port on 127.0.0.1
# and the hub is offline (tests/test_pretrained.py starts a server and points them at it).
os.environ["HF_HUB_OFFLINE"] = "1"
os.environ["HF_ENDPOINT"] = os.environ["GHOSTNET_TF_RELEASES_URL"] = \
    os.environ["GHOSTNET_TF_PADDLE_URL"] = "http://127.0.0.1:9"
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

import keras  # noqa: E402
import tensorflow as tf  # noqa: E402

_cpu = tf.config.list_physical_devices("CPU")[0]
tf.config.set_logical_device_configuration(
    _cpu, [tf.config.LogicalDeviceConfiguration(), tf.config.LogicalDeviceConfiguration()])


@pytest.fixture(autouse=True)
def _fresh_keras_state():
    """Each test starts with the default dtype policy, fresh layer names and seed 0, so that
    its random weights do not depend on the tests that ran before it in the same worker (an
    unseeded clip-gated squeeze-excite closed every gate in 2 builds of 64 and failed CI)."""
    keras.config.set_dtype_policy("float32")
    keras.utils.clear_session()
    keras.utils.set_random_seed(0)
    yield
    keras.config.set_dtype_policy("float32")


@pytest.fixture
def server(tmp_path, monkeypatch):
    """A weights server on 127.0.0.1 (reference/weights_server.py) that the hub and the file
    sites point at, with the library's and huggingface_hub's caches in tmp_path."""
    import huggingface_hub.constants

    from reference.weights_server import WeightsServer

    server = WeightsServer()
    for variable in ("HF_ENDPOINT", "GHOSTNET_TF_RELEASES_URL", "GHOSTNET_TF_PADDLE_URL"):
        monkeypatch.setenv(variable, server.url)
    monkeypatch.setenv("KERAS_HOME", str(tmp_path / "keras"))
    monkeypatch.setattr(huggingface_hub.constants, "HF_HUB_CACHE", str(tmp_path / "hub"))
    monkeypatch.setattr(huggingface_hub.constants, "HF_HUB_OFFLINE", False)  # set above
    yield server
    server.stop()
