"""Numerical helpers shared by the tests: random batch norms, so that every variable matters
to a model's output, and the relative difference of two outputs."""
import keras
import numpy as np

from ghostnet_tf.compat import sublayers


def randomize_batch_norms(model, seed=0):
    """`model` with random batch-norm statistics and affine parameters, so that folding and
    conversion cannot pass on Keras' defaults (mean 0, variance 1, gamma 1, beta 0)."""
    rng = np.random.default_rng(seed)
    for layer in sublayers(model, recursive=True):
        if isinstance(layer, keras.layers.BatchNormalization):
            channels = layer.gamma.shape[0]
            layer.gamma.assign(rng.uniform(0.5, 1.5, channels))
            layer.beta.assign(rng.uniform(-0.2, 0.2, channels))
            layer.moving_mean.assign(rng.uniform(-0.2, 0.2, channels))
            layer.moving_variance.assign(rng.uniform(0.5, 2.0, channels))
    return model


def relative_difference(a, b):
    """max |a - b| / max |b|."""
    a, b = keras.ops.convert_to_numpy(a), keras.ops.convert_to_numpy(b)
    return np.abs(a - b).max() / np.abs(b).max()
