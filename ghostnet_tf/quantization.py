"""Simulated int8 for quantization-aware training, in Keras ops (TensorFlow and JAX).

`fake_quant` rounds a tensor to the 8-bit grid of a range the way TensorFlow's
`FakeQuantWithMinMaxVars` op does, value for value: the range is first nudged so that zero
is exactly on the grid, as the int8 zero point requires. The LiteRT converter reads that
op's ranges when it quantizes a graph, so a model trained with `fake_quant` converts to an
int8 file whose arithmetic is the one it was trained with. Gradients pass straight through
the rounding inside the range and are zero outside it, as TensorFlow's are.

`ActivationQuantizer` is the layer for activations: it tracks its input's range during
training (a moving average of each batch's min and max, started from the first batch) and
rounds to that range. `QuantizedConv2D`, `QuantizedDepthwiseConv2D` and `QuantizedDense`
round their kernels: per output channel, symmetric (`weight_range`), as the converter does
with a convolution's kernel, and with one scale for a dense layer's.
"""
import keras
from keras import ops

BITS = 8
LEVELS = 2 ** BITS - 1  # 255 steps between the ends of a range
# A range narrower than this is widened: zero width has no grid.
MIN_WIDTH = 1e-6


@ops.custom_gradient
def _floor_straight_through(x):
    def grad(*args, upstream=None):
        return args[0] if upstream is None else upstream

    return ops.floor(x), grad


def quantization_range(minimum, maximum):
    """(min, max) that `fake_quant` and the exported graph use: widened to contain zero (the
    int8 grid has an exact zero) and to at least `MIN_WIDTH`."""
    minimum = ops.minimum(ops.convert_to_tensor(minimum, "float32"), 0.0)
    maximum = ops.maximum(ops.convert_to_tensor(maximum, "float32"), 0.0)
    return minimum, ops.maximum(maximum, minimum + MIN_WIDTH)


def fake_quant(x, minimum, maximum, narrow_range=False):
    """`x` rounded to the 8-bit grid of [minimum, maximum] and clipped to it, as TensorFlow's
    FakeQuantWithMinMaxVars(PerChannel) computes it (per-channel ranges broadcast against
    `x`). `narrow_range` leaves out the lowest code (254 steps, symmetric weights).
    Give ranges from `quantization_range`; they get no gradient."""
    low = 1.0 if narrow_range else 0.0
    minimum, maximum = ops.stop_gradient(minimum), ops.stop_gradient(maximum)
    scale = (maximum - minimum) / (LEVELS - low)
    inverse_scale = (LEVELS - low) / (maximum - minimum)
    # The zero point: where zero falls on the grid, rounded, kept on the grid.
    zero_point = ops.clip(ops.floor(low - minimum / scale + 0.5), low, float(LEVELS))
    nudged_min = (low - zero_point) * scale
    nudged_max = (LEVELS - zero_point) * scale
    clipped = ops.clip(x, nudged_min, nudged_max)
    steps = _floor_straight_through((clipped - nudged_min) * inverse_scale + 0.5)
    return steps * scale + nudged_min


def weight_range(kernel, channel_axes=(-1,)):
    """The symmetric range of each output channel of `kernel`: +-max|w| over every axis but
    `channel_axes` ((-1,) for a convolution; (-2, -1) for a depthwise one, whose output
    channel c * m + k is input channel c's k-th), shaped to broadcast against `kernel`, for
    `fake_quant(..., narrow_range=True)`. The converter gives each channel the scale
    max|w| / 127, so weights on this grid convert unchanged."""
    kept = {axis % len(kernel.shape) for axis in channel_axes}
    reduce = tuple(i for i in range(len(kernel.shape)) if i not in kept)
    bound = ops.max(ops.abs(kernel), axis=reduce, keepdims=True)
    return quantization_range(-bound, bound)


@keras.saving.register_keras_serializable(package="ghostnet_tf")
class ActivationQuantizer(keras.layers.Layer):
    """Rounds its input to the int8 grid of the range it tracked during training.

    In training the range moves toward each batch's min and max by `1 - momentum` (the
    first batch sets it), and the output is rounded to the updated range. At inference the
    range stays. A quantizer that has seen no batch passes its input through unchanged.

    Args:
        momentum: of the moving average of the range.
        fixed_range: (min, max) to use from the start instead, never moved (the image's
            [0, 255], whose int8 codes are then the pixels themselves).
    """

    def __init__(self, momentum=0.99, fixed_range=None, **kwargs):
        super().__init__(**kwargs)
        if not 0.0 <= momentum < 1.0:
            raise ValueError(f"ActivationQuantizer: momentum must be in [0, 1), got "
                             f"{momentum}.")
        self.momentum = momentum
        self.fixed_range = None if fixed_range is None else tuple(map(float, fixed_range))

    def build(self, input_shape):
        self.minimum = self.add_weight(name="minimum", shape=(), initializer="zeros",
                                       trainable=False)
        self.maximum = self.add_weight(name="maximum", shape=(), initializer="zeros",
                                       trainable=False)
        self.observed = self.add_weight(name="observed", shape=(), initializer="zeros",
                                        trainable=False)
        if self.fixed_range is not None:
            self.minimum.assign(self.fixed_range[0])
            self.maximum.assign(self.fixed_range[1])
            self.observed.assign(1.0)

    def call(self, x, training=False):
        if training and self.fixed_range is None:
            low = ops.stop_gradient(ops.cast(ops.min(x), "float32"))
            high = ops.stop_gradient(ops.cast(ops.max(x), "float32"))
            keep = self.momentum * self.observed  # 0 on the first batch
            self.minimum.assign(keep * self.minimum + (1.0 - keep) * low)
            self.maximum.assign(keep * self.maximum + (1.0 - keep) * high)
            self.observed.assign(1.0)
        quantized = fake_quant(x, *quantization_range(self.minimum, self.maximum))
        return ops.where(self.observed > 0, quantized, x)

    def compute_output_shape(self, input_shape):
        return input_shape

    def get_config(self):
        return {**super().get_config(), "momentum": self.momentum,
                "fixed_range": self.fixed_range}


class _RoundedKernel:
    """A layer whose kernel is rounded to int8 in the forward pass, on `kernel_range`: one
    scale per output channel (`CHANNEL_AXES`), or with `per_channel=False` one scale for
    the whole kernel (for accelerators that take no other).

    With `folded_scale=True` the layer stands for a convolution and the batch norm after it:
    it trains the float kernel, which a fixed `kernel_scale` per output channel (the batch
    norm's gamma / sigma) multiplies before the rounding. A training step then moves the
    folded kernel as it moves the float model with its batch norm frozen. Training the
    folded kernel itself would make each channel's step (gamma / sigma)^-2 times as large
    (up to 8x on a Fashion-MNIST GhostNetV2).
    """

    CHANNEL_AXES = (-1,)

    def __init__(self, *args, per_channel=True, folded_scale=False, **kwargs):
        super().__init__(*args, **kwargs)
        self.per_channel = bool(per_channel)
        self.folded_scale = bool(folded_scale)

    def build(self, input_shape):
        super().build(input_shape)
        if self.folded_scale:
            shape = tuple(self.kernel.shape[axis] for axis in self.CHANNEL_AXES)
            self.kernel_scale = self.add_weight(name="kernel_scale", shape=shape,
                                                initializer="ones", trainable=False)

    # Keras' convolutions save their kernel and bias only: with a kernel_scale, every
    # variable is saved and loaded, as a Layer's are (kernel, bias, kernel_scale).
    def save_own_variables(self, store):
        if self.folded_scale:
            keras.layers.Layer.save_own_variables(self, store)
        else:
            super().save_own_variables(store)

    def load_own_variables(self, store):
        if self.folded_scale:
            keras.layers.Layer.load_own_variables(self, store)
        else:
            super().load_own_variables(store)

    def folded_kernel(self, kernel):
        """The kernel the layer computes with, before the rounding."""
        return kernel * self.kernel_scale if self.folded_scale else kernel

    def kernel_range(self, kernel):
        return weight_range(kernel, self.CHANNEL_AXES if self.per_channel else ())

    def rounded_kernel(self, kernel):
        kernel = self.folded_kernel(kernel)
        return fake_quant(kernel, *self.kernel_range(kernel), narrow_range=True)

    def get_config(self):
        return {**super().get_config(), "per_channel": self.per_channel,
                "folded_scale": self.folded_scale}


@keras.saving.register_keras_serializable(package="ghostnet_tf")
class QuantizedConv2D(_RoundedKernel, keras.layers.Conv2D):
    """A Conv2D whose kernel is rounded to int8 (per output channel by default) in the
    forward pass."""

    def convolution_op(self, inputs, kernel):
        return super().convolution_op(inputs, self.rounded_kernel(kernel))


@keras.saving.register_keras_serializable(package="ghostnet_tf")
class QuantizedDepthwiseConv2D(_RoundedKernel, keras.layers.DepthwiseConv2D):
    """A DepthwiseConv2D whose kernel is rounded to int8 (per output channel by default) in
    the forward pass."""

    CHANNEL_AXES = (-2, -1)

    def call(self, inputs):
        outputs = ops.depthwise_conv(inputs, self.rounded_kernel(self.kernel),
                                     strides=self.strides, padding=self.padding,
                                     dilation_rate=self.dilation_rate,
                                     data_format=self.data_format)
        if self.use_bias:
            outputs = outputs + self.bias
        return outputs if self.activation is None else self.activation(outputs)


@keras.saving.register_keras_serializable(package="ghostnet_tf")
class QuantizedDense(_RoundedKernel, keras.layers.Dense):
    """A Dense whose kernel is rounded to int8 in the forward pass, on one scale: the
    converter's fully connected op takes no other."""

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **{**kwargs, "per_channel": False})

    def get_config(self):
        config = super().get_config()
        del config["per_channel"]  # always False
        return config

    def call(self, inputs, training=None):
        outputs = ops.matmul(inputs, self.rounded_kernel(self.kernel))
        if self.use_bias:
            outputs = outputs + self.bias
        return outputs if self.activation is None else self.activation(outputs)
