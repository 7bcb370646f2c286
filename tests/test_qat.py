"""Quantization-aware training (ghostnet_tf.qat): the simulated model against the int8 file
the converter makes of it."""
import os
import signal
import subprocess
import sys
import textwrap

import keras
import numpy as np
import pytest

from ghostnet_tf.layers import GhostBottleneck, GhostModule
from ghostnet_tf.models import get_model
from ghostnet_tf.qat import fold_batch_norms, quantization_aware
from ghostnet_tf.quantization import (ActivationQuantizer, QuantizedConv2D, QuantizedDense,
                                      QuantizedDepthwiseConv2D)
from tests.runs import run_train, signal_after_first_epoch, tiny_run


def _coloured_images(count, seed):
    """Images of one dominant colour each, labelled by it: a task a tiny model learns in a
    few steps, so that its predictions are confident, as a trained model's are."""
    rng = np.random.default_rng(seed)
    labels = rng.integers(0, 3, count)
    colours = rng.uniform(0, 80, (count, 3))
    colours[np.arange(count), labels] += 150
    noise = rng.uniform(0.6, 1.0, (count, 16, 16, 3))
    return (colours[:, None, None, :] * noise).astype("float32"), labels


def _tiny_ghostnet():
    inputs = keras.Input((16, 16, 3))
    x = keras.layers.Rescaling(1 / 127.5, offset=-1)(inputs)
    x = keras.layers.Conv2D(8, 3, strides=2, padding="same", use_bias=False)(x)
    x = keras.layers.ReLU()(keras.layers.BatchNormalization()(x))
    # A linear Ghost module of ratio 3: a depthwise convolution of multiplier 2.
    x = GhostModule(12, ratio=3, activation=False, use_batch_norm=False)(x)
    x = keras.layers.ReLU()(keras.layers.BatchNormalization()(x))
    x = GhostBottleneck(16, 16, strides=2, se_ratio=0.25)(x)
    x = keras.layers.GlobalAveragePooling2D()(x)
    return keras.Model(inputs, keras.layers.Dense(3, activation="softmax")(x))


@pytest.fixture(scope="module")
def trained():
    keras.utils.set_random_seed(0)
    images, labels = _coloured_images(512, 0)
    model = _tiny_ghostnet()
    model.compile(keras.optimizers.Adam(0.01), "sparse_categorical_crossentropy")
    model.fit(images, labels, batch_size=32, epochs=8, verbose=0)
    aware = quantization_aware(model)
    aware.compile(keras.optimizers.Adam(1e-3), "sparse_categorical_crossentropy")
    aware.fit(images, labels, batch_size=32, epochs=1, verbose=0)
    return model, aware


def test_the_quantization_aware_model_rounds_tracks_and_keeps_its_batch_norms(trained):
    """Per channel, the batch norms after convolutions stay (they train with batch
    statistics) and fold only for export; the others become multiply-adds."""
    model, aware = trained
    batch_norms = [layer for layer in aware.layers
                   if isinstance(layer, keras.layers.BatchNormalization)]
    assert batch_norms and all(isinstance(bn.input._keras_history.operation,
                                          (QuantizedConv2D, QuantizedDepthwiseConv2D))
                               for bn in batch_norms)
    exported = fold_batch_norms(aware)
    assert not any(isinstance(layer, keras.layers.BatchNormalization)
                   for layer in exported.layers)
    images, _ = _coloured_images(256, 1)
    np.testing.assert_allclose(exported.predict(images, verbose=0),
                               aware.predict(images, verbose=0), atol=1e-5)
    assert QuantizedConv2D in {type(layer) for layer in aware.layers}
    quantizers = [layer for layer in aware.layers if isinstance(layer, ActivationQuantizer)]
    assert all(float(q.observed) == 1.0 for q in quantizers)
    assert (float(quantizers[0].minimum), float(quantizers[0].maximum)) == (0.0, 255.0)
    # It learned the task as the float model did.
    images, labels = _coloured_images(256, 1)
    accuracy = {name: np.mean(np.argmax(m.predict(images, verbose=0), 1) == labels)
                for name, m in (("float", model), ("aware", aware))}
    assert accuracy["aware"] >= max(0.9, accuracy["float"] - 0.02)


def test_rescalings_stay_constant_and_batch_norms_train_their_gamma(trained):
    """A Rescaling has no weights in the float model: its stand-in does not train (the
    image normalization's multiplier, trained, broke a GhostNetV2 in 20 steps at lr 0.005).
    A standalone batch norm's stand-in trains its gamma, times its fixed 1 / sigma."""
    from ghostnet_tf.qat import _rescaling_multiply_add

    model, aware = trained
    rescaling = next(layer for layer in model.layers
                     if isinstance(layer, keras.layers.Rescaling))
    stand_in = aware.get_layer(rescaling.name)
    assert isinstance(stand_in, QuantizedDepthwiseConv2D) and not stand_in.trainable_weights
    for got, want in zip(stand_in.get_weights(), _rescaling_multiply_add(rescaling)):
        np.testing.assert_array_equal(got, want)  # after the fixture's epoch of training
    gated = [layer for layer in aware.layers
             if isinstance(layer, QuantizedDepthwiseConv2D) and layer.folded_scale
             and layer.kernel_size == (1, 1)]
    assert gated and all(len(layer.trainable_weights) == 2 for layer in gated)


def test_a_confident_mistake_still_teaches_the_model(trained):
    """The softmax's output is not rounded: a class probability rounded to 0 would leave
    the cross-entropy (clipped) no gradient from the examples the model gets most wrong."""
    import tensorflow as tf

    _, aware = trained
    images, labels = _coloured_images(32, 6)
    wrong = (labels + 1) % 3
    probabilities = aware.predict(images, verbose=0)
    assert probabilities[np.arange(32), wrong].max() < 1 / 510  # rounds to 0 on a 1/255 grid
    classifier_bias = next(layer for layer in reversed(aware.layers)
                           if isinstance(layer, QuantizedDense)).bias
    with tf.GradientTape() as tape:
        loss = tf.reduce_mean(keras.losses.sparse_categorical_crossentropy(
            wrong, aware(images, training=True)))
    # d loss / d logits = probabilities - one-hot: about -1 for each example's wrong label,
    # so about -1/3 per class on average (0.28 measured; 1e-4 with the probabilities rounded).
    assert float(tf.reduce_max(tf.abs(tape.gradient(loss, classifier_bias)))) > 0.1


def test_the_int8_file_computes_what_the_model_simulates(trained, tmp_path):
    from ghostnet_tf.export.litert import TFLitePredictor, quantization_aware_int8

    _, aware = trained
    images, _ = _coloured_images(256, 1)
    content = quantization_aware_int8(aware, _coloured_images(64, 2)[0])
    path = tmp_path / "model_int8.tflite"
    path.write_bytes(content)
    int8 = TFLitePredictor(str(path))
    assert int8.input["dtype"] == np.uint8 and int8.input["quantization"] == (1.0, 0)
    simulated = aware.predict(images, verbose=0)
    outputs = int8(images)
    assert np.mean(np.argmax(outputs, 1) == np.argmax(simulated, 1)) >= 0.995
    assert np.abs(outputs - simulated).max() < 0.02  # measured: 0.004


@pytest.mark.parametrize("per_channel", [True, False])
@pytest.mark.parametrize("convolution", [keras.layers.Conv2D, keras.layers.DepthwiseConv2D])
def test_an_sgd_step_moves_a_kernel_as_it_moves_the_float_model(convolution, per_channel):
    """Per channel, the batch norm after a convolution trains with batch statistics: an SGD
    step changes the kernel as the same step changes the float model (a frozen batch norm
    scales each channel's step by the ratio of its moving to its batch sigma, here up to
    1000x). Per tensor, the batch norm is folded and frozen: the model trains the float
    kernel (times gamma / sigma), and a step changes the folded kernel as it changes the
    float model with its batch norm frozen. Trained directly, the folded kernel of a
    channel with gamma / sigma = 0.1 would move 100 times as far (lost 5 points on a
    GhostNetV2 at a learning rate its float model takes)."""
    keras.utils.set_random_seed(0)
    inputs = keras.Input((8, 8, 4))
    x = convolution(3, padding="same", use_bias=False)(inputs) \
        if convolution is keras.layers.DepthwiseConv2D else convolution(4, 3, use_bias=False)(inputs)
    batch_norm = keras.layers.BatchNormalization()
    x = keras.layers.ReLU()(batch_norm(x))
    x = keras.layers.GlobalAveragePooling2D()(x)
    model = keras.Model(inputs, keras.layers.Dense(3)(x))
    gamma, beta, mean, _ = batch_norm.get_weights()
    variance = np.array([0.01, 1.0, 100.0, 4.0], "float32")  # gamma / sigma: 10 to 0.1
    batch_norm.set_weights([gamma, beta + 1.0, mean, variance])
    batch_norm.trainable = per_channel  # frozen where the quantization-aware one folds it
    aware = quantization_aware(model, per_channel=per_channel)
    images = np.random.default_rng(0).uniform(0, 255, (16, 8, 8, 4)).astype("float32")
    labels = np.arange(16) % 3
    scale = 1 / np.sqrt(variance + batch_norm.epsilon)

    def folded(network):
        layer = next(layer for layer in network.layers if isinstance(layer, convolution))
        kernel = keras.ops.convert_to_numpy(layer.kernel)
        if getattr(layer, "folded_scale", False):
            return kernel * keras.ops.convert_to_numpy(layer.kernel_scale)
        return kernel * scale.reshape(kernel.shape[2:]) if kernel.shape[-1] == 1 \
            else kernel * scale
    steps = {}
    for name, network in (("float", model), ("aware", aware)):
        network.compile(keras.optimizers.SGD(0.5),
                        keras.losses.SparseCategoricalCrossentropy(from_logits=True))
        before = folded(network)
        network.fit(images, labels, batch_size=16, epochs=1, verbose=0)
        steps[name] = np.abs(folded(network) - before).reshape(-1, 4).max(axis=0)
    # Per channel, the same size to within the rounding's effect on the gradient.
    ratio = steps["aware"] / steps["float"]
    assert np.all(steps["float"] > 0) and np.all((0.5 < ratio) & (ratio < 2)), ratio


def _weight_scales(path):
    """{op type: the number of scales of each of its int8 weight tensors} of a `.tflite`."""
    from ai_edge_litert.interpreter import Interpreter

    interpreter = Interpreter(model_path=str(path))
    tensors = {t["index"]: t for t in interpreter.get_tensor_details()}
    scales = {}
    for op in interpreter._get_ops_details():
        for index in op["inputs"][1:2]:  # the kernel
            tensor = tensors.get(index)
            if tensor is not None and tensor["dtype"] == np.int8:
                count = len(tensor["quantization_parameters"]["scales"])
                scales.setdefault(op["op_name"], set()).add(count)
    return scales


def test_a_per_tensor_model_converts_to_one_weight_scale_per_convolution(trained, tmp_path):
    from ghostnet_tf.export.litert import TFLitePredictor, quantization_aware_int8

    model, _ = trained
    images, labels = _coloured_images(512, 0)
    aware = quantization_aware(model, per_channel=False)
    aware.compile(keras.optimizers.Adam(1e-3), "sparse_categorical_crossentropy")
    aware.fit(images, labels, batch_size=32, epochs=1, verbose=0)
    path = tmp_path / "model_int8.tflite"
    path.write_bytes(quantization_aware_int8(aware, _coloured_images(64, 2)[0]))
    scales = _weight_scales(path)
    assert scales["CONV_2D"] == {1} and scales["DEPTHWISE_CONV_2D"] == {1}
    # The per-channel model's file has many: the count above is the file's, not a default.
    per_channel = tmp_path / "per_channel.tflite"
    per_channel.write_bytes(quantization_aware_int8(trained[1], _coloured_images(64, 2)[0]))
    assert max(_weight_scales(per_channel)["CONV_2D"]) > 1
    test_images, _ = _coloured_images(256, 1)
    simulated = aware.predict(test_images, verbose=0)
    outputs = TFLitePredictor(str(path))(test_images)
    assert np.mean(np.argmax(outputs, 1) == np.argmax(simulated, 1)) >= 0.995
    assert np.abs(outputs - simulated).max() < 0.02


def test_a_quantization_aware_model_saves_and_loads(trained, tmp_path):
    _, aware = trained
    aware.save(tmp_path / "aware.keras")
    loaded = keras.saving.load_model(tmp_path / "aware.keras")
    images, _ = _coloured_images(16, 3)
    np.testing.assert_array_equal(loaded.predict(images, verbose=0),
                                  aware.predict(images, verbose=0))


def test_export_writes_the_int8_file_of_a_quantization_aware_model(trained, tmp_path):
    from ghostnet_tf.export import export
    from ghostnet_tf.export.litert import MediaPipePredictor, TFLitePredictor

    _, aware = trained
    images, _ = _coloured_images(64, 4)
    report = export(aware, tmp_path / "out", ["int8"], calibration_images=images,
                    check_images=images)
    entry = report["exports"]["int8"]
    assert entry["input_dtype"] == "uint8" and "layers" not in entry
    assert entry["check"]["top1_agreement"] == 1.0
    # MediaPipe's ImageClassifier, the phone-side client, loads it and reads the same scores.
    client = MediaPipePredictor(entry["path"])
    try:
        scores = client(images)
    finally:
        client.close()
    np.testing.assert_allclose(scores, TFLitePredictor(entry["path"])(images), atol=1e-6)


def _final_weights(run):
    return [keras.ops.convert_to_numpy(v) for v in
            keras.saving.load_model(run / "last.keras", compile=False).weights]


@pytest.mark.slow
def test_a_quantization_aware_run_stops_and_resumes_to_the_same_weights(tmp_path):
    seeded = ["seed=3", "data.deterministic=true", "data.batch_size=16"]
    # The float model it fine-tunes, as a run saves it (untrained: the resume is the point).
    keras.utils.set_random_seed(3)
    get_model("ghost_resnet20").save(tmp_path / "float.keras")
    aware = [*seeded, "schedule.iterations=24", "schedule.boundaries=[16]",
             "training.steps_per_epoch=8", "training.quantize=int8", "optimizer.lr=0.005",
             f"model.weights={tmp_path / 'float.keras'}"]
    runs = {name: tiny_run(tmp_path, *aware, f"run_name={name}", per_batch=80)
            for name in ("whole", "stopped")}
    process = run_train(runs["whole"])
    output, _ = process.communicate(timeout=600)
    assert process.returncode == 0, output
    returncode, output = signal_after_first_epoch(runs["stopped"], tmp_path / "runs" / "stopped",
                                                  signal.SIGTERM)
    assert returncode == 143, output
    resumed = run_train(runs["stopped"])
    output, _ = resumed.communicate(timeout=600)
    assert resumed.returncode == 0, output
    whole, stopped = (_final_weights(tmp_path / "runs" / name) for name in ("whole", "stopped"))
    assert len(whole) == len(stopped)
    for got, want in zip(stopped, whole):
        np.testing.assert_allclose(got, want, rtol=0, atol=1e-5)
    model = keras.saving.load_model(tmp_path / "runs" / "whole" / "last.keras", compile=False)
    quantizers = [layer for layer in model.layers if isinstance(layer, ActivationQuantizer)]
    assert quantizers and all(float(q.observed) == 1.0 for q in quantizers)


JAX_SCRIPT = textwrap.dedent("""
    import sys
    import keras
    import numpy as np
    from tests.test_qat import _coloured_images
    model = keras.saving.load_model(sys.argv[1])
    images, labels = _coloured_images(64, 5)
    labels = (labels + 1) % 3  # labels it does not know yet: gradients to learn from
    model.compile(keras.optimizers.SGD(0.01), "sparse_categorical_crossentropy")
    model.fit(images, labels, batch_size=16, epochs=1, verbose=0)
    model.save(sys.argv[2])
    np.save(sys.argv[3], model.predict(images, verbose=0))
""")


def test_the_jax_backend_trains_a_quantization_aware_model(trained, tmp_path):
    """Keras ops only: JAX trains it (kernels and tracked ranges), and the file it saves
    loads in TensorFlow and computes the same."""
    _, aware = trained
    aware.save(tmp_path / "start.keras")
    env = {**os.environ, "KERAS_BACKEND": "jax", "JAX_PLATFORMS": "cpu"}
    subprocess.run([sys.executable, "-c", JAX_SCRIPT, str(tmp_path / "start.keras"),
                    str(tmp_path / "jax.keras"), str(tmp_path / "jax.npy")],
                   env=env, check=True, timeout=300, cwd=os.path.dirname(os.path.dirname(
                       os.path.abspath(__file__))))
    trained_by_jax = keras.saving.load_model(tmp_path / "jax.keras")
    images, _ = _coloured_images(64, 5)
    np.testing.assert_allclose(trained_by_jax.predict(images, verbose=0),
                               np.load(tmp_path / "jax.npy"), atol=1e-6)
    moved = {}
    for before, after in zip(aware.layers, trained_by_jax.layers):
        for name, old, new in zip([w.name for w in before.weights], before.get_weights(),
                                  after.get_weights()):
            moved[name] = moved.get(name, False) or not np.array_equal(old, new)
    assert moved["kernel"] and moved["maximum"], str(moved) + str([(b.name, a.name, [float(np.abs(x - y).max()) for x, y in zip(b.get_weights(), a.get_weights())]) for b, a in zip(aware.layers, trained_by_jax.layers) if b.weights])  # it trained, and tracked the ranges
    assert not moved["kernel_scale"]  # standalone batch norms' 1 / sigma stays fixed
    assert moved["moving_mean"]  # those after convolutions track their statistics


def test_quantization_aware_training_refuses_mixed_precision():
    from ghostnet_tf.training.config import ConfigError, load_config
    from ghostnet_tf.training.trainer import check_model_config

    config = load_config("configs/fashion_mnist_ghostnet_100.yaml", [
        "training.quantize=int8", "training.precision=mixed_bfloat16"])
    with pytest.raises(ConfigError, match="training.quantize int8 simulates int8 on float32 "
                                          "values.*set training.precision=float32"):
        check_model_config(config)


@pytest.mark.parametrize("setting, per_channel", [("int8", True), ("int8_per_tensor", False)])
def test_the_recipe_key_chooses_the_weight_scales(setting, per_channel):
    from ghostnet_tf.data.files import DatasetInfo
    from ghostnet_tf.training.config import load_config
    from ghostnet_tf.training.trainer import build_model

    config = load_config(None, ["run_name=x", "schedule.iterations=10",
                                "model.name=ghost_resnet20", f"training.quantize={setting}"])
    info = DatasetInfo("cifar10", "train", 10, tuple("abcdefghij"), 100, (32, 32, 3))
    convolutions = [layer for layer in build_model(config, info).layers
                    if isinstance(layer, (QuantizedConv2D, QuantizedDepthwiseConv2D))]
    assert convolutions and {layer.per_channel for layer in convolutions} == {per_channel}


@pytest.mark.parametrize("layer", [
    keras.layers.Rescaling([0.5, 2.0, -1.0], offset=[1.0, 0.0, 3.0]),  # GhostNet's normalization
    keras.layers.Rescaling(1 / 127.5, offset=-1),
    keras.layers.BatchNormalization(epsilon=1e-3)])
def test_a_standalone_normalization_becomes_the_same_multiply_add(layer):
    # Pixel values: the quantization-aware model rounds its input image to integers.
    images = np.random.default_rng(0).integers(0, 256, (2, 4, 4, 3)).astype("float32")
    inputs = keras.Input((4, 4, 3))
    model = keras.Model(inputs, layer(inputs))
    if isinstance(layer, keras.layers.BatchNormalization):
        rng = np.random.default_rng(1)
        layer.set_weights([rng.uniform(0.5, 2, 3), rng.normal(size=3), rng.normal(size=3),
                           rng.uniform(0.5, 2, 3)])
    # Before training its quantizers pass values through, and a per-channel scale rounds a
    # 1x1 depthwise kernel exactly: the stand-in computes what the layer computes.
    aware = quantization_aware(model)
    np.testing.assert_allclose(aware.predict(images, verbose=0),
                               model.predict(images, verbose=0), rtol=1e-5, atol=1e-5)


def test_a_registry_ghostnet_has_a_quantization_aware_form():
    keras.utils.set_random_seed(0)
    model = get_model("ghostnet_050", input_shape=(64, 64, 3), classes=10)
    aware = quantization_aware(model)
    images = np.random.default_rng(0).uniform(0, 255, (4, 64, 64, 3)).astype("float32")
    # Before training, its quantizers pass values through: only the kernels are rounded.
    difference = np.abs(aware.predict(images, verbose=0) - model.predict(images, verbose=0))
    assert 0 < difference.max() < 0.02
