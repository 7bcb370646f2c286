"""The ONNX target: `.onnx` files for the runtimes and vendor compilers that start from ONNX
(ONNX Runtime, TensorRT, OpenVINO, the NPU toolchains). Needs the onnx extra.

"onnx" is Keras' own `model.export(format="onnx")` (tf2onnx under the TensorFlow backend) of
the inference copy, without the LiteRT rewrites. Input "images": float32 NHWC RGB (or the
model's own channels) in [0, 255], the normalization inside; output: class probabilities.
"onnx_int8" is ONNX Runtime's static quantization of it (QDQ, per-channel weights,
calibrated on the export's calibration images), the form TensorRT and the vendor compilers
read.
"""
import collections
import os
import tempfile

import numpy as np

from ghostnet_tf.atomic import write_file
from ghostnet_tf.checks import ArgumentError, first_line
from ghostnet_tf.export.common import Opened

SUFFIX = ".onnx"
KINDS = ("onnx", "onnx_int8")
FILES = {"onnx": "model.onnx", "onnx_int8": "model_onnx_int8.onnx"}  # onnx_files' default


def onnx_files(model, kinds, calibration_images=None, per_channel=True, step=None,
               names=FILES):
    """{kind: bytes} of the `.onnx` files of `model` (the inference copy): "onnx", Keras'
    `model.export(format="onnx")`, and "onnx_int8", ONNX Runtime's static quantization of it
    (QDQ, int8 weights and activations, calibrated on `calibration_images`); `step(text)` is
    told of each conversion, by the file `names` of the kinds."""
    import logging

    import tensorflow as tf

    shape = tuple(model.input_shape[1:])
    files = {}
    with tempfile.TemporaryDirectory() as scratch:
        path = os.path.join(scratch, "model.onnx")
        if step is not None:
            step(f"converting {names['onnx']}")
        model(np.zeros((1,) + shape, np.float32), training=False)  # Keras exports called models
        # tf2onnx logs the optimizations it skips (tracebacks included) as warnings.
        tf2onnx_log = logging.getLogger("tf2onnx")
        level = tf2onnx_log.level
        tf2onnx_log.setLevel(logging.ERROR)
        try:
            model.export(path, format="onnx", verbose=False, input_signature=[
                tf.TensorSpec((None,) + shape, tf.float32, name="images")])
        finally:
            tf2onnx_log.setLevel(level)
        with open(path, "rb") as file:
            files["onnx"] = file.read()
        if "onnx_int8" in kinds:
            if step is not None:
                step(f"quantizing {names['onnx_int8']}")
            files["onnx_int8"] = _quantized_onnx(path, calibration_images, per_channel, scratch)
    return {kind: files[kind] for kind in kinds}


def _quantized_onnx(path, calibration_images, per_channel, scratch):
    """ONNX Runtime's static int8 quantization of the `.onnx` at `path` (QDQ format, after
    its recommended pre-processing), calibrated on float32 [0, 255] images."""
    from onnxruntime.quantization import (
        CalibrationDataReader,
        QuantFormat,
        QuantType,
        quantize_static,
    )
    from onnxruntime.quantization.shape_inference import quant_pre_process

    class Images(CalibrationDataReader):
        def __init__(self):
            self.images = iter(np.asarray(calibration_images, np.float32))

        def get_next(self):
            image = next(self.images, None)
            return None if image is None else {"images": image[None]}

    prepared = os.path.join(scratch, "prepared.onnx")
    quantized = os.path.join(scratch, "int8.onnx")
    # ONNX shape inference only: the symbolic pass cannot follow the free batch size.
    quant_pre_process(path, prepared, skip_symbolic_shape=True)
    quantize_static(prepared, quantized, Images(), quant_format=QuantFormat.QDQ,
                    per_channel=per_channel, activation_type=QuantType.QInt8,
                    weight_type=QuantType.QInt8)
    with open(quantized, "rb") as file:
        return file.read()


def onnx_op_counts(content):
    """{op type: count} of an `.onnx` (bytes)."""
    import onnx

    graph = onnx.load_from_string(content).graph
    return dict(sorted(collections.Counter(node.op_type for node in graph.node).items()))


def steps(formats):
    """How many steps writing `formats` takes: the int8 file is quantized from the float
    one, converted first."""
    return 1 + any(f.name == "onnx_int8" for f in formats)


def write(model, folder, formats, conversion, step):
    """Write the `.onnx` file of each of `formats` (rows of the format table) of `model`
    (the inference copy) into `folder`: {name: entry}."""
    names = {**FILES, **{f.name: f.file for f in formats}}
    contents = onnx_files(model, [f.name for f in formats], conversion.calibration_images,
                          conversion.options.per_channel, step, names)
    entries = {}
    for onnx in formats:
        content = contents[onnx.name]
        write_file(os.path.join(folder, onnx.file), content)
        entries[onnx.name] = {"bytes": len(content), "input_dtype": "float32",
                              "ops": onnx_op_counts(content)}
    return entries


class ONNXPredictor:
    """Runs an `.onnx` file (as export.py writes it: float32 NHWC [0, 255] images in,
    probabilities out) in ONNX Runtime on the CPU. Needs the onnx extra."""

    def __init__(self, path):
        try:
            import onnxruntime
        except ImportError:
            raise ArgumentError("model", f'{path}: .onnx files run in ONNX Runtime: pip install '
                                         '-e ".[onnx]".') from None
        self.path = os.fspath(path)
        if not os.path.isfile(self.path):
            raise ArgumentError("model", f"{self.path}: no such file.")
        try:
            self.session = onnxruntime.InferenceSession(
                self.path, providers=["CPUExecutionProvider"])
        except Exception as error:  # onnxruntime raises its own kinds for unreadable files
            raise ArgumentError("model", f"{self.path} is not a readable .onnx file: "
                                         f"{first_line(error)}") from None
        self.input = self.session.get_inputs()[0]
        self.input_shape = tuple(d if isinstance(d, int) else None
                                 for d in self.input.shape[1:])
        self.num_classes = int(self.session.get_outputs()[0].shape[-1])

    def __call__(self, images):
        images = np.asarray(images, dtype=np.float32)
        if tuple(images.shape[1:]) != self.input_shape:
            raise ArgumentError("images", f"of shape {tuple(images.shape[1:])} do not fit "
                                          f"{self.path}, which takes {self.input_shape}.")
        return self.session.run(None, {self.input.name: images})[0]


def load(path, runtime=None):
    """The `.onnx` file at `path`, opened in ONNX Runtime."""
    onnx = ONNXPredictor(path)
    return Opened(onnx, onnx.input_shape, "float32", onnx.num_classes, "onnxruntime")
