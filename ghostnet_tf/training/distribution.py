"""Where training runs: tf.distribute strategies on the TensorFlow backend, keras.distribution
data parallelism on JAX, and which worker of a multi-machine run this process is."""
import contextlib
import json
import os

import keras


def is_tensorflow():
    return keras.backend.backend() == "tensorflow"


def worker_info():
    """(is_chief, task index) from TF_CONFIG; a single machine is the chief."""
    tf_config = json.loads(os.environ.get("TF_CONFIG", "{}") or "{}")
    task = tf_config.get("task", {})
    kind, index = task.get("type", "chief"), int(task.get("index", 0))
    has_chief = "chief" in tf_config.get("cluster", {})
    is_chief = kind == "chief" or (kind == "worker" and index == 0 and not has_chief)
    return is_chief, index


def split_cpu(count):
    """Split the CPU into `count` logical devices. TensorFlow allows this only before it
    initializes its devices, and it cannot be undone in the process."""
    import tensorflow as tf

    cpu = tf.config.list_physical_devices("CPU")[0]
    current = tf.config.get_logical_device_configuration(cpu)
    if current is None or len(current) != count:
        tf.config.set_logical_device_configuration(
            cpu, [tf.config.LogicalDeviceConfiguration() for _ in range(count)])


def make_strategy(name, cpu_devices=None):
    """A tf.distribute strategy; `auto` mirrors over the local GPUs when there are several."""
    import tensorflow as tf

    if name == "multi_worker":
        return tf.distribute.MultiWorkerMirroredStrategy()
    if cpu_devices:
        split_cpu(cpu_devices)
    gpus = tf.config.list_logical_devices("GPU")
    if name == "mirrored" or (name == "auto" and len(gpus) > 1):
        devices = None if gpus else [d.name for d in tf.config.list_logical_devices("CPU")]
        return tf.distribute.MirroredStrategy(devices)
    if name == "one_device":
        return tf.distribute.OneDeviceStrategy("/gpu:0" if gpus else "/cpu:0")
    if name == "tpu":
        resolver = tf.distribute.cluster_resolver.TPUClusterResolver()
        tf.config.experimental_connect_to_cluster(resolver)
        tf.tpu.experimental.initialize_tpu_system(resolver)
        return tf.distribute.TPUStrategy(resolver)
    return tf.distribute.get_strategy()


@contextlib.contextmanager
def jax_data_parallel():
    """Data parallelism over all local JAX devices while inside, when there are several;
    yields the number of replicas. The previous distribution is restored on the way out."""
    devices = keras.distribution.list_devices()
    previous = keras.distribution.distribution()
    if len(devices) > 1:
        keras.distribution.set_distribution(keras.distribution.DataParallel(devices=devices))
    try:
        yield len(devices)
    finally:
        keras.distribution.set_distribution(previous)


class Placement:
    """The replicas of a run and the scope to build and fit in: a tf.distribute strategy on
    TensorFlow, keras.distribution on JAX (entered with `with Placement(...)`)."""

    def __init__(self, strategy_name, cpu_devices=None):
        self.strategy_name, self.cpu_devices = strategy_name, cpu_devices
        self.strategy = None
        self._stack = contextlib.ExitStack()

    def __enter__(self):
        if is_tensorflow():
            self.strategy = make_strategy(self.strategy_name, self.cpu_devices)
            self.replicas = self.strategy.num_replicas_in_sync
        else:
            self.replicas = self._stack.enter_context(jax_data_parallel())
        return self

    def __exit__(self, *exc_info):
        return self._stack.__exit__(*exc_info)

    def scope(self):
        return self.strategy.scope() if self.strategy else contextlib.nullcontext()
