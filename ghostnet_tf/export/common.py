"""What every export target shares: the export's own file names, the conversion options, and
the float32 inference copy that every file is converted from."""
import dataclasses

import numpy as np

from ghostnet_tf.checks import ArgumentError
from ghostnet_tf.export_rewrites import REWRITES, leading_rescaling, per_channel

LABELS_FILE = "labels.txt"  # beside an export (and a run's checkpoints): one class name a line
EXPORT_REPORT = "export.json"  # beside an export: what was exported, from which model


def labels_text(class_names):
    """The labels file, one class name per line: `labels.txt` beside an export or a run's
    checkpoints, and inside each `.tflite`."""
    return "".join(f"{name}\n" for name in class_names)


def as_rgb(images):
    """Grayscale images (N, H, W, 1) as RGB with R = G = B; other images unchanged. Exported
    `.tflite` files of grayscale models take RGB and convert it back exactly."""
    images = np.asarray(images, dtype=np.float32)
    return np.repeat(images, 3, axis=-1) if images.shape[-1] == 1 else images


@dataclasses.dataclass(frozen=True)
class ExportOptions:
    """How the files of an export are converted (the same for every format that reads them).

    Attributes:
        int8_io: input and output type of the full-int8 `.tflite`, "uint8" (what phone image
            pipelines deliver) or "int8". Either way the input's quantization is set so that
            a code is the pixel value itself (scale 1, zero point 0 or -128).
        float_ops: full int8: ops kept in float (selective quantization): op types such as
            "DEPTHWISE_CONV_2D" or "MEAN", or output tensor names of single ops, as
            `tflite_op_outputs` lists them. The file then takes and returns float32.
        per_channel: int8: one scale per output channel of each convolution (the converters'
            default) or one per tensor.
        rewrites: the exact graph rewrites of the `.tflite` files
            (`ghostnet_tf.export_rewrites.REWRITES`).
        onnx_layout: the `.onnx` files' input layout, "nhwc" or "nchw" (the network inside
            is NCHW either way).
    """
    int8_io: str = "uint8"
    float_ops: tuple = ()
    per_channel: bool = True
    rewrites: tuple = REWRITES
    onnx_layout: str = "nhwc"

    def __post_init__(self):
        # Lists from the command line or a caller are kept as tuples: the record is hashable.
        object.__setattr__(self, "float_ops", tuple(self.float_ops))
        object.__setattr__(self, "rewrites", tuple(self.rewrites))


@dataclasses.dataclass(frozen=True)
class Conversion:
    """What the files of one export are made with: the class names for their labels, the
    calibration images of the int8 formats (float32 [0, 255]), the options, and the
    evaluation transform of the model's images (an `EvalTransform`; None: the registry's)
    for the files that carry their preprocessing."""
    class_names: object = None
    calibration_images: object = None
    options: ExportOptions = ExportOptions()
    eval_transform: object = None


def _is_augmentation(layer):
    """Keras' random augmentation layers, which are the identity at inference."""
    import keras
    return type(layer).__name__.startswith("Random") or isinstance(
        layer, (keras.layers.RandAugment, keras.layers.AugMix, keras.layers.MixUp,
                keras.layers.CutMix))


def check_classifier(model):
    """ArgumentError("model") unless `model` is what the exports are made for: an image
    classifier, one image in and one (batch, classes) tensor of scores out."""
    import keras

    outputs = keras.tree.flatten(model.output)
    shapes = ", ".join(str(tuple(output.shape)) for output in outputs)
    if len(model.inputs) != 1 or len(model.inputs[0].shape) != 4 or len(outputs) != 1 \
            or len(outputs[0].shape) != 2:
        raise ArgumentError("model", f"{model.name} takes {len(model.inputs)} input(s) and "
                                     f"gives {len(outputs)} output(s) of shape {shapes}; the "
                                     "export writes image classifiers (one image in, one "
                                     "(batch, classes) tensor of scores out).")


def inference_copy(model):
    """A float32 copy of a functional `model`, with augmentation layers removed and
    re-parameterizable layers folded.

    Mixed-precision models are exported in float32 (the converter makes float16 itself),
    augmentation layers, which do nothing at inference, are not carried into the graph, and
    GhostNetV3's branches (or any `RepConv`'s) are folded by `reparameterize`, so the graph
    has one convolution where training had several.
    """
    from ghostnet_tf.models.reparameterize import deploy_form
    from ghostnet_tf.models.transfer import clone_with_weights, from_config

    def call(layer, *args, **kwargs):
        return args[0] if _is_augmentation(layer) else layer(*args, **kwargs)

    if getattr(model, "inputs", None) is None:
        raise ArgumentError("model", f"{model.name} is a subclassed model; export needs a "
                                     "functional or Sequential one: build it with keras.Input.")
    copy = clone_with_weights(model, lambda layer: from_config(layer, dtype="float32"),
                              call_function=call)
    return deploy_form(copy)


@dataclasses.dataclass(frozen=True)
class Opened:
    """A file of one export target, opened to run: float32 [0, 255] images -> probabilities,
    what it takes and what runs it."""
    predict: object
    input_shape: tuple
    input_dtype: str  # what the file itself takes: "float32", "uint8" or "int8"
    num_classes: int
    runtime: str  # keras, tensorflow, litert, mediapipe, onnxruntime


def input_normalization(model):
    """([mean], [std]) per channel, in pixel values, of the normalization `x * scale +
    offset` that `model` makes of its input (`leading_rescaling`), or None."""
    rescaling = leading_rescaling(model)
    if rescaling is None:
        return None
    channels = model.input_shape[-1]
    scale = per_channel(rescaling.scale, channels)
    offset = per_channel(rescaling.offset, channels)
    return [float(v) for v in -offset / scale], [float(v) for v in 1.0 / scale]
