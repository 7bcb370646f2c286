"""The same GhostNetV2 weights give the same outputs on the TensorFlow and JAX backends, the
model built by its constructor on each (at 224x224, where the DFC attention's maps have odd
sizes). GhostNetV2's bottlenecks hold all of GhostNet's layers; test_harness loads a model of
every family, GhostNet's included, from a .keras file on JAX."""
import os
import subprocess
import sys
import textwrap

import keras
import numpy as np
import pytest

import ghostnet_tf
from tests.numerics import randomize_batch_norms

JAX_SCRIPT = textwrap.dedent("""
    import sys
    import keras
    import numpy as np
    import ghostnet_tf
    assert keras.backend.backend() == "jax", keras.backend.backend()
    constructor, weights, images, logits_out, probabilities_out = sys.argv[1:]
    build = getattr(ghostnet_tf, constructor)
    model = build(width=1.0, classifier_activation=None, weights=weights)
    np.save(logits_out, keras.ops.convert_to_numpy(model(np.load(images))))
    model = build(width=1.0, weights=weights)
    np.save(probabilities_out, keras.ops.convert_to_numpy(model(np.load(images))))
""")


@pytest.mark.slow
@pytest.mark.parametrize("constructor", ["GhostNetV2"])
def test_ghostnet_outputs_agree_on_tensorflow_and_jax(tmp_path, constructor):
    rng = np.random.default_rng(3)
    build = getattr(ghostnet_tf, constructor)
    # Random BN statistics and affine parameters, so that every weight matters.
    model = randomize_batch_norms(build(width=1.0, classifier_activation=None), seed=3)
    weights = tmp_path / "ghostnet_100.weights.h5"
    model.save_weights(weights)
    images = rng.uniform(0, 255, (2, 224, 224, 3)).astype("float32")
    np.save(tmp_path / "images.npy", images)
    tf_logits = keras.ops.convert_to_numpy(model(images))
    probabilities = build(width=1.0, weights=weights)
    tf_probabilities = keras.ops.convert_to_numpy(probabilities(images))

    env = {**os.environ, "KERAS_BACKEND": "jax", "JAX_PLATFORMS": "cpu"}
    subprocess.run(
        [sys.executable, "-c", JAX_SCRIPT, constructor, str(weights),
         str(tmp_path / "images.npy"),
         str(tmp_path / "logits.npy"), str(tmp_path / "probabilities.npy")],
        env=env, check=True, timeout=600)
    jax_logits = np.load(tmp_path / "logits.npy")
    jax_probabilities = np.load(tmp_path / "probabilities.npy")
    assert np.abs(tf_logits).max() > 0.1  # a real signal, not all zeros
    np.testing.assert_allclose(jax_probabilities, tf_probabilities, rtol=0, atol=1e-5)
    # Logits: the same to float32 rounding, relative to their scale.
    scale = np.abs(tf_logits).max()
    assert np.abs(jax_logits - tf_logits).max() <= 1e-5 * max(scale, 1.0)
