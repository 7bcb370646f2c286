"""The ONNX target: `.onnx` files for the runtimes and vendor compilers that start from ONNX
(ONNX Runtime, TensorRT, OpenVINO, the NPU toolchains). Needs the onnx extra.

"onnx" is Keras' own `model.export(format="onnx")` (tf2onnx under the TensorFlow backend) of
the inference copy with the ONNX rewrites (`export_rewrites.ONNX_REWRITES`), which let
tf2onnx's transpose optimizer run: the network inside is NCHW, as timm's and the official
ONNX files are, with at most one Transpose, at the input, and ONNX Runtime's basic
optimizations (the batch norms folded into the convolutions) saved in the file. Input
"images": float32 RGB (or the model's own channels) in [0, 255], NHWC or NCHW
(`ExportOptions.onnx_layout`), the normalization inside; output: class probabilities. The file's metadata has the labels, the
layout, the input range and the evaluation transform. A converter that fails or warns fails
the export with its message.
"onnx_int8" is ONNX Runtime's static quantization of it (QDQ, per-channel weights,
calibrated on the export's calibration images; the softmax left in float, so that the output
is probabilities), the form TensorRT and the vendor compilers read.
"""
import collections
import json
import logging
import os
import tempfile

import numpy as np

from ghostnet_tf.atomic import write_file
from ghostnet_tf.checks import ArgumentError, first_line
from ghostnet_tf.export.common import Opened, input_normalization

SUFFIX = ".onnx"
KINDS = ("onnx", "onnx_int8")
FILES = {"onnx": "model.onnx", "onnx_int8": "model_onnx_int8.onnx"}  # onnx_files' default
LAYOUTS = ("nhwc", "nchw")
RUNTIMES = ("onnxruntime", "openvino")  # what runs an .onnx


def check_layout(layout):
    if layout not in LAYOUTS:
        raise ArgumentError("onnx_layout", f"must be one of {', '.join(LAYOUTS)}, got "
                                           f"{layout!r}.")


def onnx_files(model, kinds, calibration_images=None, per_channel=True, step=None,
               names=FILES, layout="nhwc", metadata=None):
    """{kind: bytes} of the `.onnx` files of `model` (the inference copy): "onnx", Keras'
    `model.export(format="onnx")` of its ONNX graph taking `layout` images, and "onnx_int8",
    ONNX Runtime's static quantization of it (QDQ, int8 weights and activations, calibrated
    on `calibration_images`, NHWC float32 [0, 255]); `metadata` ({key: text}) goes into
    both; `step(text)` is told of each conversion, by the file `names` of the kinds."""
    check_layout(layout)
    files = {}
    with tempfile.TemporaryDirectory() as scratch:
        converted = os.path.join(scratch, "converted.onnx")
        path = os.path.join(scratch, "model.onnx")
        if step is not None:
            step(f"converting {names['onnx']}")
        _convert(model, converted, layout)
        _optimize(converted, path)
        _finish(path, metadata)
        with open(path, "rb") as file:
            files["onnx"] = file.read()
        if "onnx_int8" in kinds:
            if step is not None:
                step(f"quantizing {names['onnx_int8']}")
            images = np.asarray(calibration_images, np.float32)
            if layout == "nchw":
                images = images.transpose(0, 3, 1, 2)
            quantized = os.path.join(scratch, "int8.onnx")
            _quantize(path, quantized, images, per_channel, scratch)
            _finish(quantized, metadata)
            with open(quantized, "rb") as file:
                files["onnx_int8"] = file.read()
    return {kind: files[kind] for kind in kinds}


def _convert(model, path, layout):
    """Write the `.onnx` of `model`'s ONNX graph taking `layout` images to `path`;
    ArgumentError("model") with tf2onnx's message when it logs a warning or an error (it
    logs the optimizations that fail and goes on without them)."""
    import tensorflow as tf

    from ghostnet_tf.export_rewrites import onnx_graph

    graph = onnx_graph(model, layout)
    shape = tuple(graph.input_shape[1:])
    graph(np.zeros((1,) + shape, np.float32), training=False)  # Keras exports called models
    records = _Records()
    log = logging.getLogger("tf2onnx")
    level, propagate = log.level, log.propagate
    log.addHandler(records)
    log.setLevel(logging.WARNING)
    log.propagate = False  # the export reports them in its one-line error instead
    try:
        graph.export(path, format="onnx", verbose=False, input_signature=[
            tf.TensorSpec((None,) + shape, tf.float32, name="images")])
    finally:
        log.removeHandler(records)
        log.setLevel(level)
        log.propagate = propagate
    if records.messages:
        raise ArgumentError("model", f"{model.name} does not convert cleanly to ONNX: "
                                     f"tf2onnx: {records.messages[0]}")


class _Records(logging.Handler):
    """The messages of the log records it is given (with the first line of their
    exception)."""

    def __init__(self):
        super().__init__(logging.WARNING)
        self.messages = []

    def emit(self, record):
        message = record.getMessage()
        if record.exc_info and record.exc_info[1] is not None:
            error = record.exc_info[1]
            message += f" ({type(error).__name__}: {first_line(error)})"
        self.messages.append(message)


def _optimize(path, optimized):
    """Write the `.onnx` at `path` after ONNX Runtime's basic graph optimizations to
    `optimized`: constant folding and the fusions that keep standard ONNX ops, among them
    the batch norms' Mul and Add (how tf2onnx writes a Keras BatchNormalization) into the
    convolutions, and the zero Pads before strided depthwise convolutions into their pads
    (pnnx, ncnn's converter, drops a Pad node). OpenVINO and ncnn do not fuse all of these
    themselves: without, OpenVINO ran GhostNet 1.0x at 1.07-1.13x and ncnn at up to 1.08x
    the time of PyTorch's export (docs/benchmarks.md)."""
    import onnxruntime

    options = onnxruntime.SessionOptions()
    options.graph_optimization_level = onnxruntime.GraphOptimizationLevel.ORT_ENABLE_BASIC
    options.optimized_model_filepath = optimized
    onnxruntime.InferenceSession(path, options, providers=["CPUExecutionProvider"])


def _finish(path, metadata):
    """Give the `.onnx` at `path` the `metadata` and only the opset domains its nodes use
    (tf2onnx lists ai.onnx.ml and ONNX Runtime every domain it knows, which no node of an
    image classifier uses)."""
    import onnx

    proto = onnx.load(path)
    used = {node.domain for node in proto.graph.node} | {""}
    kept = [opset for opset in proto.opset_import if opset.domain in used]
    del proto.opset_import[:]
    proto.opset_import.extend(kept)
    if metadata:
        onnx.helper.set_model_props(proto, {key: str(value) for key, value in metadata.items()})
    onnx.checker.check_model(proto)
    onnx.save(proto, path)


def onnx_metadata(model, conversion, layout):
    """{key: text} that the `.onnx` files of `model` (the inference copy) carry: how to feed
    them (layout, channels, range, normalization inside), the evaluation transform, labels."""
    from ghostnet_tf.models import registry

    height, width, channels = model.input_shape[1:]
    transform = conversion.eval_transform or registry.eval_transform_for(model.name, height)
    normalization = input_normalization(model)
    metadata = {
        "layout": layout.upper(),
        "input": (f"images: float32, {layout.upper()}, {height}x{width}, "
                  f"{'RGB' if channels == 3 else f'{channels} channel(s)'}, pixel values in "
                  "[0, 255]; the normalization is inside the model (mean 0, std 1 outside)"),
        "output": "class probabilities",
        "eval_transform": json.dumps({
            "resize_short_side_to": round(min(height, width) / transform.crop_pct),
            "center_crop": [height, width], "interpolation": transform.interpolation,
            "crop_pct": transform.crop_pct}),
    }
    if normalization is not None:
        mean, std = normalization
        metadata["normalization_inside"] = json.dumps(
            {"mean": mean, "std": std, "of": "pixel values in [0, 255]"})
    if conversion.class_names is not None:
        metadata["labels"] = json.dumps(list(conversion.class_names))
    return metadata


def _quantize(path, quantized, calibration_images, per_channel, scratch):
    """Write ONNX Runtime's static int8 quantization of the `.onnx` at `path` (QDQ format,
    after its recommended pre-processing), calibrated on float32 [0, 255] images in the
    file's layout, to `quantized`."""
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

    import onnx

    prepared = os.path.join(scratch, "prepared.onnx")
    # ONNX shape inference only: the symbolic pass cannot follow the free batch size.
    quant_pre_process(path, prepared, skip_symbolic_shape=True)
    # The softmax stays float, on the dequantized logits: quantized, its output is in steps
    # of 1/256 and its rows sum to anything from 0.57 to 1.
    softmax = [node.name for node in onnx.load(prepared).graph.node
               if node.op_type == "Softmax"]
    quantize_static(prepared, quantized, Images(), quant_format=QuantFormat.QDQ,
                    per_channel=per_channel, activation_type=QuantType.QInt8,
                    weight_type=QuantType.QInt8, nodes_to_exclude=softmax)


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
    layout = conversion.options.onnx_layout
    contents = onnx_files(model, [f.name for f in formats], conversion.calibration_images,
                          conversion.options.per_channel, step, names, layout,
                          onnx_metadata(model, conversion, layout))
    entries = {}
    for onnx in formats:
        content = contents[onnx.name]
        write_file(os.path.join(folder, onnx.file), content)
        entries[onnx.name] = {"bytes": len(content), "input_dtype": "float32",
                              "layout": layout, "ops": onnx_op_counts(content)}
    return entries


class ONNXPredictor:
    """Runs an `.onnx` file (as export.py writes it: float32 [0, 255] images in, NHWC or, as
    its "layout" metadata says, NCHW; probabilities out) in ONNX Runtime on the CPU, on NHWC
    images. Needs the onnx extra."""

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
        shape = tuple(d if isinstance(d, int) else None for d in self.input.shape[1:])
        metadata = self.session.get_modelmeta().custom_metadata_map
        self.channels_first = metadata.get("layout") == "NCHW"
        self.input_shape = shape[1:] + shape[:1] if self.channels_first else shape
        self.num_classes = int(self.session.get_outputs()[0].shape[-1])

    def __call__(self, images):
        images = np.asarray(images, dtype=np.float32)
        if tuple(images.shape[1:]) != self.input_shape:
            raise ArgumentError("images", f"of shape {tuple(images.shape[1:])} do not fit "
                                          f"{self.path}, which takes {self.input_shape}.")
        if self.channels_first:
            images = images.transpose(0, 3, 1, 2)
        return self._run(images)

    def _run(self, images):
        return self.session.run(None, {self.input.name: images})[0]


class OpenVINOPredictor(ONNXPredictor):
    """Runs an `.onnx` file as `ONNXPredictor` does (which reads its shapes and layout), in
    OpenVINO on the CPU, in float32: OpenVINO's default on CPUs with bfloat16 is bfloat16,
    which moved probabilities by up to 1.0. Needs `pip install openvino`."""

    def __init__(self, path):
        super().__init__(path)
        try:
            import openvino
        except ImportError:
            raise ArgumentError("runtime", "openvino needs `pip install openvino`.") from None
        self.compiled = openvino.Core().compile_model(
            self.path, "CPU", {"INFERENCE_PRECISION_HINT": "f32"})

    def _run(self, images):
        return self.compiled(images)[0]


def load(path, runtime=None):
    """The `.onnx` file at `path`, opened in `runtime` ("onnxruntime", the default, or
    "openvino")."""
    runtime = "openvino" if runtime == "openvino" else "onnxruntime"
    onnx = (OpenVINOPredictor if runtime == "openvino" else ONNXPredictor)(path)
    return Opened(onnx, onnx.input_shape, "float32", onnx.num_classes, runtime)
