"""Input pipelines: tf.data (`make_dataset`) and numpy readers of the standard files
(`load_arrays`, no TensorFlow needed). TensorFlow is imported only when a tf.data function is
first used, so the JAX backend can read the small datasets without it."""
from ghostnet_tf.data.files import DatasetInfo, load_arrays, load_cifar, load_idx_dataset
from ghostnet_tf.data.source import DataSource

_PIPELINE_NAMES = ("Augmentation", "make_dataset", "make_synthetic_dataset")


def __getattr__(name):
    if name in _PIPELINE_NAMES:
        from ghostnet_tf.data import pipelines
        return getattr(pipelines, name)
    raise AttributeError(f"module 'ghostnet_tf.data' has no attribute {name!r}")


__all__ = ["DataSource", "DatasetInfo", "load_arrays", "load_cifar", "load_idx_dataset", *_PIPELINE_NAMES]
