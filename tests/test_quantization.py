"""Simulated int8 (ghostnet_tf.quantization) against TensorFlow's FakeQuant ops, which the
LiteRT converter reads, and against the int8 file converted from them."""
import os
import subprocess
import sys
import textwrap

import keras
import numpy as np
import pytest
import tensorflow as tf
from keras import ops

from ghostnet_tf.quantization import (ActivationQuantizer, fake_quant, quantization_range,
                                      weight_range)

# Ranges of every kind the nudging treats differently: across zero, all positive (zero point
# at the lowest code), all negative (at the highest), narrow and wide.
RANGES = [(-1.0, 1.0), (-0.3, 2.7), (0.5, 4.0), (-6.0, -0.25), (-1e-3, 2e-3), (-37.0, 0.1)]


def _values(seed=0, shape=(4000,), spread=8.0):
    return np.random.default_rng(seed).normal(0, spread, shape).astype("float32")


def assert_same_codes(ours, expected, width):
    """The same grid points: TensorFlow's kernel computes `steps * scale + min` in one fused
    multiply-add, which Keras ops cannot ask for, so values may differ in the last bit, but
    by far less than a step (1/255 of the range's `width`)."""
    np.testing.assert_allclose(ours, expected, rtol=0, atol=1e-6 * np.max(width))


@pytest.mark.parametrize("narrow_range", [False, True])
def test_fake_quant_is_tensorflows_fake_quant_value_for_value(narrow_range):
    for minimum, maximum in RANGES:
        # Mostly inside the range, some beyond either end.
        x = (minimum + maximum) / 2 + _values() * (maximum - minimum) / 16
        expected = tf.quantization.fake_quant_with_min_max_vars(
            x, minimum, maximum, num_bits=8, narrow_range=narrow_range).numpy()
        ours = ops.convert_to_numpy(fake_quant(x, np.float32(minimum), np.float32(maximum),
                                               narrow_range=narrow_range))
        assert_same_codes(ours, expected, maximum - minimum)
        assert len(np.unique(ours)) > 20  # really rounded to a grid of many codes


def test_per_channel_weights_are_tensorflows_per_channel_fake_quant():
    kernel = _values(1, (3, 3, 16, 8), spread=0.2)
    kernel[..., 3] *= 40  # channels of very different size
    minimum, maximum = weight_range(kernel)
    expected = tf.quantization.fake_quant_with_min_max_vars_per_channel(
        kernel, tf.reshape(minimum, [-1]), tf.reshape(maximum, [-1]), num_bits=8,
        narrow_range=True).numpy()
    ours = ops.convert_to_numpy(fake_quant(kernel, minimum, maximum, narrow_range=True))
    assert_same_codes(ours, expected, ops.convert_to_numpy(maximum - minimum))
    # Symmetric: 255 codes from -127 to 127 steps of max|w| / 127 in each channel.
    steps = ours / (np.abs(kernel).max(axis=(0, 1, 2)) / 127)
    np.testing.assert_allclose(steps, np.round(steps), atol=1e-3)
    assert np.abs(np.round(steps)).max() == 127


def test_the_gradient_passes_inside_the_range_and_stops_outside():
    x = tf.constant(_values(2))
    minimum, maximum = quantization_range(-3.0, 5.0)
    upstream = tf.constant(_values(3))
    with tf.GradientTape(persistent=True) as tape:
        tape.watch(x)
        expected = tf.quantization.fake_quant_with_min_max_vars(x, minimum, maximum)
        ours = fake_quant(x, minimum, maximum)
    inside = tape.gradient(expected, x, upstream).numpy()
    np.testing.assert_allclose(tape.gradient(ours, x, upstream).numpy(), inside, atol=1e-6)
    assert 0 < np.count_nonzero(inside) < len(inside)  # some values were clipped


def test_ranges_always_hold_zero_and_some_width():
    for given, expected in [((0.5, 4.0), (0.0, 4.0)), ((-6.0, -0.25), (-6.0, 0.0)),
                            ((0.0, 0.0), (0.0, 1e-6))]:
        np.testing.assert_allclose([float(v) for v in quantization_range(*given)], expected)


def test_the_activation_range_starts_at_the_first_batch_and_moves_by_its_momentum():
    quantizer = ActivationQuantizer(momentum=0.9)
    x = np.linspace(-1.0, 3.0, 64, dtype="float32")
    # Before any batch it passes values through.
    np.testing.assert_array_equal(ops.convert_to_numpy(quantizer(x)), x)
    first = ops.convert_to_numpy(quantizer(x, training=True))
    assert (float(quantizer.minimum), float(quantizer.maximum)) == (-1.0, 3.0)
    assert_same_codes(first, tf.quantization.fake_quant_with_min_max_vars(x, -1.0, 3.0).numpy(),
                      4.0)
    quantizer(2 * x, training=True)
    np.testing.assert_allclose([float(quantizer.minimum), float(quantizer.maximum)],
                               [0.9 * -1 + 0.1 * -2, 0.9 * 3 + 0.1 * 6], rtol=1e-6)
    kept = (float(quantizer.minimum), float(quantizer.maximum))
    quantizer(10 * x)  # inference: the range stays
    assert (float(quantizer.minimum), float(quantizer.maximum)) == kept


def test_a_model_with_quantizers_saves_and_loads(tmp_path):
    inputs = keras.Input((6,))
    model = keras.Model(inputs, ActivationQuantizer(momentum=0.5, name="q")(
        keras.layers.Dense(4)(inputs)))
    x = _values(4, (8, 6), spread=1.0)
    model(x, training=True)
    model.save(tmp_path / "m.keras")
    loaded = keras.saving.load_model(tmp_path / "m.keras")
    assert loaded.get_layer("q").momentum == 0.5
    np.testing.assert_array_equal(ops.convert_to_numpy(loaded(x)),
                                  ops.convert_to_numpy(model(x)))


JAX_SCRIPT = textwrap.dedent("""
    import sys
    import jax
    import numpy as np
    from ghostnet_tf.quantization import fake_quant, quantization_range
    x = np.load(sys.argv[1])
    minimum, maximum = quantization_range(-3.0, 5.0)
    forward = fake_quant(x, minimum, maximum)
    grad = jax.grad(lambda v: (fake_quant(v, minimum, maximum) * x).sum())(x)
    np.save(sys.argv[2], np.stack([np.asarray(forward), np.asarray(grad)]))
""")


def test_jax_computes_the_same_values_and_gradients(tmp_path):
    x = _values(5)
    np.save(tmp_path / "x.npy", x)
    env = {**os.environ, "KERAS_BACKEND": "jax", "JAX_PLATFORMS": "cpu"}
    subprocess.run([sys.executable, "-c", JAX_SCRIPT, str(tmp_path / "x.npy"),
                    str(tmp_path / "out.npy")], env=env, check=True, timeout=300)
    forward, grad = np.load(tmp_path / "out.npy")
    minimum, maximum = quantization_range(-3.0, 5.0)
    tensor = tf.constant(x)
    with tf.GradientTape() as tape:
        tape.watch(tensor)
        expected = tf.quantization.fake_quant_with_min_max_vars(tensor, minimum, maximum)
    assert_same_codes(forward, expected.numpy(), 8.0)
    np.testing.assert_allclose(grad, tape.gradient(expected, tensor, tensor).numpy(),
                               atol=1e-6)


# ------------------------------------------------- what the converter makes of the ranges
def _constant(compute):
    """`compute()` of variables, computed now, outside any traced graph: the converter needs
    the ranges of its FakeQuant ops as constants."""
    with tf.init_scope():
        return tuple(ops.convert_to_numpy(v) for v in compute())


class _TensorFlowFakeQuant(ActivationQuantizer):
    """The quantizer as the graph the converter reads: TensorFlow's FakeQuant op."""

    def call(self, x, training=False):
        minimum, maximum = _constant(lambda: quantization_range(self.minimum, self.maximum))
        return tf.quantization.fake_quant_with_min_max_vars(x, minimum, maximum)


def _tensorflow_per_channel(kernel, axis):
    """TensorFlow's per-channel FakeQuant of `kernel` on its `weight_range`, all constants
    (as the converter needs them); the op takes the channels last, so a depthwise kernel
    (h, w, channels, 1) is turned for it."""
    kernel, minimum, maximum = _constant(lambda: (kernel, *weight_range(kernel, (axis,))))
    minimum, maximum = np.reshape(minimum, [-1]), np.reshape(maximum, [-1])
    turned = np.reshape(kernel, (*kernel.shape[:2], 1, -1)) if axis == -2 else kernel
    quantized = tf.quantization.fake_quant_with_min_max_vars_per_channel(
        turned, minimum, maximum, narrow_range=True)
    return tf.reshape(quantized, kernel.shape)


class _Conv(keras.layers.Conv2D):
    def convolution_op(self, inputs, kernel):
        return super().convolution_op(inputs, _tensorflow_per_channel(kernel, -1))


class _DepthwiseConv(keras.layers.DepthwiseConv2D):
    def call(self, inputs):
        return tf.nn.depthwise_conv2d(inputs, _tensorflow_per_channel(self.kernel, -2),
                                      [1, 1, 1, 1], "SAME") + self.bias


class _Dense(keras.layers.Dense):
    """One weight scale per tensor: the converter's fully connected op takes no other."""

    def call(self, inputs):
        kernel = _constant(lambda: [self.kernel])[0]
        bound = float(np.abs(kernel).max())
        kernel = tf.quantization.fake_quant_with_min_max_vars(kernel, -bound, bound,
                                                              narrow_range=True)
        return tf.matmul(inputs, kernel) + self.bias


def _model(quantizer, conv, depthwise, dense):
    """Conv + ReLU on the image, a depthwise branch added back, average pool, dense: the
    image and each op's output through `quantizer`."""
    inputs = keras.Input((12, 12, 3))
    x = quantizer(name="q_image")(inputs)
    x = quantizer(name="q_conv")(conv(8, 3, padding="same", activation="relu",
                                      name="conv")(x))
    y = quantizer(name="q_dw")(depthwise(3, padding="same", name="dw")(x))
    x = quantizer(name="q_add")(keras.layers.Add()([x, y]))
    x = quantizer(name="q_pool")(keras.layers.GlobalAveragePooling2D()(x))
    return keras.Model(inputs, quantizer(name="q_fc")(dense(5, name="fc")(x)))


def test_the_int8_file_converted_from_the_ranges_computes_the_simulated_model(tmp_path):
    from ai_edge_litert.interpreter import Interpreter

    from ghostnet_tf.export import export_saved_model
    from ghostnet_tf.export.litert import saved_model_converter

    rng = np.random.default_rng(6)
    # Each image its own colour, so that the pooled features, and the classes, differ.
    colours = 255 * rng.dirichlet([0.3] * 3, 200)[:, None, None, :]
    images = (colours * rng.uniform(0.5, 1, (200, 12, 12, 3))).astype("float32")
    model = _model(ActivationQuantizer, keras.layers.Conv2D, keras.layers.DepthwiseConv2D,
                   keras.layers.Dense)
    # The simulated model's weights on their int8 grids (per channel; the dense per tensor).
    for name, axis in [("conv", -1), ("dw", -2)]:
        kernel = model.get_layer(name).kernel
        kernel.assign(fake_quant(kernel, *weight_range(kernel, (axis,)), narrow_range=True))
    kernel = model.get_layer("fc").kernel
    bound = float(np.abs(ops.convert_to_numpy(kernel)).max())
    kernel.assign(fake_quant(kernel, *quantization_range(-bound, bound), narrow_range=True))
    for start in range(0, 200, 50):
        model(images[start:start + 50], training=True)  # the quantizers track their ranges
    simulated = ops.convert_to_numpy(model(images))

    graph = _model(_TensorFlowFakeQuant, _Conv, _DepthwiseConv, _Dense)
    graph.set_weights(model.get_weights())
    export_saved_model(graph, str(tmp_path / "sm"))
    converter = saved_model_converter(str(tmp_path / "sm"))
    converter.optimizations = [tf.lite.Optimize.DEFAULT]
    converter.inference_input_type = converter.inference_output_type = tf.int8
    interpreter = Interpreter(model_content=converter.convert())
    interpreter.allocate_tensors()
    ops_run = [op["op_name"] for op in interpreter._get_ops_details()]
    assert {"CONV_2D", "DEPTHWISE_CONV_2D", "ADD", "MEAN", "FULLY_CONNECTED"} <= set(ops_run)
    assert "DEQUANTIZE" not in ops_run  # nothing left in float
    source, target = interpreter.get_input_details()[0], interpreter.get_output_details()[0]
    (in_scale, in_zero), (out_scale, out_zero) = source["quantization"], target["quantization"]
    # The file's output grid is the last quantizer's range.
    minimum, maximum = _constant(lambda: quantization_range(model.get_layer("q_fc").minimum,
                                                            model.get_layer("q_fc").maximum))
    np.testing.assert_allclose(out_scale, (maximum - minimum) / 255, rtol=1e-5)
    outputs = []
    for image in images:
        codes = np.clip(np.round(image / in_scale + in_zero), -128, 127).astype(np.int8)
        interpreter.set_tensor(source["index"], codes[None])
        interpreter.invoke()
        outputs.append((interpreter.get_tensor(target["index"])[0].astype("float32")
                        - out_zero) * out_scale)
    steps = np.abs(np.array(outputs) - simulated) / out_scale
    # The same values: the int8 arithmetic is the simulated one (measured: 2e-5 steps).
    assert steps.max() < 0.01
    assert len(np.unique(np.argmax(simulated, axis=1))) > 1
    assert np.mean(np.argmax(outputs, axis=1) == np.argmax(simulated, axis=1)) >= 0.995
