"""The layers under tf.distribute: their variables must exist before `fit` starts."""
import keras
import numpy as np
import tensorflow as tf

from ghostnet_tf import GhostNet


def brightness_task(count=64, size=32, seed=0):
    """Bright or dark images: a task any convolutional network learns in a few steps."""
    rng = np.random.default_rng(seed)
    labels = rng.integers(0, 2, count)
    images = rng.uniform(0, 120, (count, size, size, 3)) + 120 * labels[:, None, None, None]
    return images.astype("float32"), labels


def test_ghostnet_trains_under_mirrored_strategy_on_two_devices():
    devices = [d.name for d in tf.config.list_logical_devices("CPU")]
    strategy = tf.distribute.MirroredStrategy(devices[:2])
    assert strategy.num_replicas_in_sync == 2
    with strategy.scope():
        model = GhostNet(width=0.5, input_shape=(32, 32, 3), classes=2, dropout=0.0)
        model.compile(optimizer=keras.optimizers.Adam(1e-3),
                      loss="sparse_categorical_crossentropy", metrics=["accuracy"])
    # Every variable, those of the layers nested in the Ghost bottlenecks too, is mirrored.
    block = model.get_layer("blocks_3_0")
    assert isinstance(block.se.conv_reduce.kernel.value, tf.distribute.DistributedValues)
    assert isinstance(block.ghost1.primary_bn.moving_mean.value,
                      tf.distribute.DistributedValues)
    images, labels = brightness_task()
    history = model.fit(images, labels, batch_size=16, epochs=4, verbose=0)
    losses = history.history["loss"]
    assert np.isfinite(losses).all()
    assert losses[-1] < losses[0]
