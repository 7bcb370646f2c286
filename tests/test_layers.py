import keras
import numpy as np
import pytest

from ghostnet_tf.layers import (
    GhostBottleneck, GhostModule, SqueezeExcite, hard_sigmoid, make_divisible)

RNG = np.random.default_rng(0)


def random_images(shape):
    return RNG.standard_normal(shape).astype("float32")


def test_make_divisible_matches_the_official_rounding():
    assert make_divisible(16 * 0.5, 4) == 8
    assert make_divisible(72 * 0.25, 4) == 20  # 18 rounds up to 20
    assert make_divisible(960 * 1.3, 4) == 1248
    assert make_divisible(10, 8) == 16  # 8 would lose more than 10%


def test_hard_sigmoid_is_relu6_of_x_plus_3_over_6():
    x = np.array([-4.0, -3.0, 0.0, 1.5, 3.0, 5.0], dtype="float32")
    np.testing.assert_allclose(keras.ops.convert_to_numpy(hard_sigmoid(x)),
                               [0.0, 0.0, 0.5, 0.75, 1.0, 1.0])


@pytest.mark.parametrize("filters, ratio, primary", [(8, 2, 4), (5, 2, 3), (9, 3, 3), (6, 1, 6)])
def test_ghost_module_channels(filters, ratio, primary):
    module = GhostModule(filters, ratio=ratio)
    out = module(random_images((2, 6, 6, 4)))
    assert out.shape == (2, 6, 6, filters)
    assert module.primary_conv.filters == primary
    assert (module.cheap_conv is None) == (ratio == 1)


def test_ghost_module_output_is_intrinsic_then_ghost_maps():
    module = GhostModule(5, kernel_size=3, ratio=3, dw_size=3, activation=False,
                         use_batch_norm=False)
    x = random_images((1, 7, 7, 2))
    out = keras.ops.convert_to_numpy(module(x))
    intrinsic = keras.ops.convert_to_numpy(module.primary_conv(x))  # 2 maps
    np.testing.assert_allclose(out[..., :2], intrinsic, rtol=1e-5, atol=1e-6)
    # Ghost map c * (ratio - 1) + k is the depthwise kernel [:, :, c, k] applied to intrinsic
    # map c (PyTorch's grouped-convolution order); the output keeps the first 3 of 4.
    kernel = keras.ops.convert_to_numpy(module.cheap_conv.kernel)  # (3, 3, 2, 2)
    padded = np.pad(intrinsic, ((0, 0), (1, 1), (1, 1), (0, 0)))
    for ghost_index in range(3):
        c, k = divmod(ghost_index, 2)
        expected = sum(padded[0, i:i + 7, j:j + 7, c] * kernel[i, j, c, k]
                       for i in range(3) for j in range(3))
        np.testing.assert_allclose(out[0, ..., 2 + ghost_index], expected, rtol=1e-4, atol=1e-5)


def test_ghost_module_applies_bn_and_relu_to_each_part():
    module = GhostModule(4, activation=True)
    out = keras.ops.convert_to_numpy(module(random_images((2, 5, 5, 3)), training=True))
    assert out.min() >= 0 and (out == 0).any()
    linear = GhostModule(4, activation=False)
    assert keras.ops.convert_to_numpy(linear(random_images((2, 5, 5, 3)))).min() < 0
    bn_eps = [layer.epsilon for layer in (module.primary_bn, module.cheap_bn)]
    assert bn_eps == [1e-5, 1e-5]
    assert module.primary_bn.momentum == 0.9


def test_ghost_module_keeps_kernel_strides_padding():
    module = GhostModule(6, kernel_size=3, strides=2, padding="valid")
    assert module(random_images((1, 9, 9, 3))).shape == (1, 4, 4, 6)
    assert module.primary_conv.kernel.shape == (3, 3, 3, 3)


def test_squeeze_excite_reduction_and_gate():
    se = SqueezeExcite(0.25)
    x = np.abs(random_images((2, 4, 4, 72)))
    out = keras.ops.convert_to_numpy(se(x))
    assert se.conv_reduce.filters == make_divisible(72 * 0.25, 4) == 20
    # Recompute by hand: mean, 1x1 conv, ReLU, 1x1 conv, relu6(x + 3) / 6, multiply.
    w1, b1 = (keras.ops.convert_to_numpy(v) for v in se.conv_reduce.weights)
    w2, b2 = (keras.ops.convert_to_numpy(v) for v in se.conv_expand.weights)
    pooled = x.mean(axis=(1, 2))
    gate = np.clip(np.maximum(pooled @ w1[0, 0] + b1, 0) @ w2[0, 0] + b2 + 3, 0, 6) / 6
    np.testing.assert_allclose(out, x * gate[:, None, None, :], rtol=1e-5, atol=1e-6)


@pytest.mark.parametrize("in_channels, out_channels, strides, identity",
                         [(16, 16, 1, True), (16, 24, 1, False), (16, 16, 2, False)])
def test_ghost_bottleneck_shortcut(in_channels, out_channels, strides, identity):
    block = GhostBottleneck(32, out_channels, dw_kernel_size=3, strides=strides, se_ratio=0.25)
    out = block(random_images((2, 8, 8, in_channels)))
    assert out.shape == (2, 8 // strides, 8 // strides, out_channels)
    assert block.has_identity_shortcut == identity
    assert (block.shortcut_conv is None) == identity
    assert (block.conv_dw is None) == (strides == 1)
    assert block.se is not None


def test_stride_two_pads_symmetrically_like_pytorch():
    # With the cheap convolutions zeroed, only the 5x5 stride-2 depthwise convolutions mix
    # pixels. PyTorch's padding (2 on every side) lets output pixel (0, 0) see input rows
    # -2..2; Keras' "same" would pad (1, 2) and let it see row 3 too.
    block = GhostBottleneck(8, 8, dw_kernel_size=5, strides=2)
    x = random_images((1, 8, 8, 8))
    block(x)
    for module in (block.ghost1, block.ghost2):
        module.cheap_conv.kernel.assign(np.zeros(module.cheap_conv.kernel.shape))
    reference = keras.ops.convert_to_numpy(block(x))[0, 0, 0]
    for row, should_change in ((3, False), (2, True)):
        moved = x.copy()
        moved[0, row, :, :] += 10.0
        out = keras.ops.convert_to_numpy(block(moved))[0, 0, 0]
        assert (np.abs(out - reference).max() > 1e-3) == should_change, row


@pytest.mark.parametrize("layer", [
    GhostModule(10, kernel_size=3, ratio=3, dw_size=5, strides=2, padding="valid",
                activation="swish", use_batch_norm=False, use_bias=True, name="g"),
    SqueezeExcite(0.5, divisor=8, name="se"),
    GhostBottleneck(48, 24, dw_kernel_size=5, strides=2, se_ratio=0.25, name="b"),
])
def test_get_config_from_config_round_trip(layer):
    x = random_images((1, 12, 12, 16))
    layer(x)
    clone = type(layer).from_config(layer.get_config())
    assert clone.get_config() == layer.get_config()
    clone(x)
    clone.set_weights(layer.get_weights())
    np.testing.assert_allclose(keras.ops.convert_to_numpy(clone(x)),
                               keras.ops.convert_to_numpy(layer(x)), rtol=1e-6)


def test_layers_compute_in_the_mixed_precision_dtype():
    keras.config.set_dtype_policy("mixed_float16")
    block = GhostBottleneck(32, 24, strides=2, se_ratio=0.25)
    out = block(random_images((1, 8, 8, 16)))
    assert block.compute_dtype == "float16" and out.dtype == "float16"
    assert block.ghost1.primary_conv.kernel.dtype == "float32"
    assert block.se.conv_reduce.compute_dtype == "float16"


@pytest.mark.parametrize("kwargs, message", [
    ({"filters": 0}, "filters"),
    ({"filters": 8, "ratio": 0}, "ratio"),
    ({"filters": 8, "ratio": 1.5}, "ratio"),
    ({"filters": 8, "dw_size": 4}, "dw_size"),
    ({"filters": 8, "padding": "causal"}, "padding"),
])
def test_ghost_module_rejects_bad_arguments(kwargs, message):
    with pytest.raises(ValueError, match=message):
        GhostModule(**kwargs)


def test_bottleneck_and_se_reject_bad_arguments():
    with pytest.raises(ValueError, match="dw_kernel_size"):
        GhostBottleneck(16, 16, dw_kernel_size=4)
    with pytest.raises(ValueError, match="se_ratio"):
        SqueezeExcite(0.0)
