"""The LiteRT target: `.tflite` files for phones (float32, float16, dynamic-range int8 and
full int8), and the two ways to run them (the LiteRT interpreter, MediaPipe's classifier).

Converted by `tf.lite.TFLiteConverter.from_saved_model` from a SavedModel of the graph that
`ghostnet_tf.export_rewrites` makes faster in LiteRT (exact rewrites); `from_keras_model`
fails on some Keras 3 models. The files take RGB images (a grayscale model converts them in
its graph), the full-int8 file takes uint8 pixels as they are by default, and every file
carries LiteRT metadata with the labels (what MediaPipe's ImageClassifier needs).
"""
import collections
import contextlib
import os
import tempfile
import weakref

import numpy as np

from ghostnet_tf.atomic import write_file
from ghostnet_tf.checks import ArgumentError
from ghostnet_tf.compat import calibrated_tflite, quantize_calibrated, tflite_ops
from ghostnet_tf.export.common import (LABELS_FILE, Conversion, ExportOptions, Opened, as_rgb,
                                       inference_copy, labels_text)
from ghostnet_tf.export.saved_model import export_saved_model
from ghostnet_tf.export_rewrites import tflite_graph
from ghostnet_tf.tflite_metadata import image_classifier_metadata, with_metadata

SUFFIX = ".tflite"
# The converter's kinds; the format table names the file of each.
KINDS = ("float32", "float16", "dynamic_int8", "int8")
RUNTIMES = ("litert", "mediapipe")  # what runs a .tflite


def convert_tflite(saved_model_dir, kind, calibration_images=None, options=ExportOptions()):
    """The bytes of a `.tflite` of the SavedModel's `serve_float` signature.

    Args:
        kind: "float32", "float16" (float16 weights), "dynamic_int8" (int8 weights, float
            activations) or "int8" (everything int8, calibrated on `calibration_images`).
        calibration_images: float32 images in [0, 255], for "int8".
        options: an `ExportOptions`; "int8" reads its `int8_io`, `float_ops` and
            `per_channel`.
    """
    import tensorflow as tf

    if kind not in KINDS:
        raise ArgumentError("kind", f"{kind!r} is not a TFLite kind: expected one of "
                                    f"{', '.join(KINDS)}.")
    if kind == "int8":
        return quantized_int8(calibrated_int8(saved_model_dir, calibration_images, options),
                              options)
    converter = saved_model_converter(saved_model_dir)
    if kind == "float16":
        converter.optimizations = [tf.lite.Optimize.DEFAULT]
        converter.target_spec.supported_types = [tf.float16]
    elif kind == "dynamic_int8":
        converter.optimizations = [tf.lite.Optimize.DEFAULT]
    return converter.convert()


def saved_model_converter(saved_model_dir):
    """A converter of the SavedModel's `serve_float` signature to builtin ops only: a model
    with Flex (select TF) ops would need the large Flex delegate."""
    import tensorflow as tf

    converter = tf.lite.TFLiteConverter.from_saved_model(saved_model_dir,
                                                         signature_keys=["serve_float"])
    converter.target_spec.supported_ops = [tf.lite.OpsSet.TFLITE_BUILTINS]
    return converter


def calibrated_int8(saved_model_dir, calibration_images, options=ExportOptions()):
    """The SavedModel's float `.tflite` with the ranges of its tensors on
    `calibration_images` (float32, [0, 255]): the one calibration that `quantized_int8`
    and `int8_layer_report` both start from."""
    import tensorflow as tf

    if calibration_images is None or len(calibration_images) == 0:
        raise ArgumentError("calibration_images", "are needed: full-integer int8 is "
                                                  "calibrated on them.")
    if options.int8_io not in ("int8", "uint8"):
        raise ArgumentError("int8_io", f"must be int8 or uint8, got {options.int8_io!r}.")
    images = np.asarray(calibration_images, dtype=np.float32)
    converter = saved_model_converter(saved_model_dir)
    converter.optimizations = [tf.lite.Optimize.DEFAULT]
    converter.representative_dataset = lambda: ([image[None]] for image in images)
    # Int8 kernels only, unless some ops stay float (a mixed graph needs float builtins).
    converter.target_spec.supported_ops = [tf.lite.OpsSet.TFLITE_BUILTINS_INT8] + (
        [tf.lite.OpsSet.TFLITE_BUILTINS] if options.float_ops else [])
    return calibrated_tflite(converter)


def quantized_int8(calibrated, options=ExportOptions(), numeric_verify=False):
    """The full-int8 `.tflite` of a `calibrated_int8` model as `options` say: integer input
    and output of `options.int8_io` that take pixel codes, or, with `options.float_ops`,
    those ops in float and float32 input and output. Names in capitals are op types
    ("DEPTHWISE_CONV_2D"), others the output tensor names of single ops. `numeric_verify`
    instruments it for the quantization debugger (float input and output)."""
    op_types = [name for name in options.float_ops if name.isupper() and "/" not in name]
    nodes = [name for name in options.float_ops if name not in op_types]
    plain = not (options.float_ops or numeric_verify)
    content = quantize_calibrated(
        calibrated, per_channel=options.per_channel,
        io_dtype=options.int8_io if plain else "float32", numeric_verify=numeric_verify,
        float_op_types=op_types or None, float_nodes=nodes or None)
    return _pixel_codes(content) if plain else content


def _pixel_codes(content):
    """A full-int8 `.tflite` whose integer input takes pixel values as codes: scale 1 and
    zero point 0 (uint8) or -128 (int8). The calibrated input range is rarely exactly
    [0, 255], and a client such as MediaPipe feeds the pixels unchanged. The ops reading the
    input compute their rescaling from these parameters when the model is loaded, so the
    model stays consistent; values beyond the calibrated range are only clipped later."""
    from ghostnet_tf.compat import tflite_model_bytes, tflite_model_object, tflite_schema

    TensorType = tflite_schema().TensorType
    model = tflite_model_object(content)
    graph = model.subgraphs[0]
    tensor = graph.tensors[graph.inputs[0]]
    zero_point = {TensorType.INT8: -128, TensorType.UINT8: 0}[tensor.type]
    tensor.quantization.scale = [1.0]
    tensor.quantization.zeroPoint = [zero_point]
    return tflite_model_bytes(model)


# The layer report runs the instrumented model on this many calibration images: enough for
# stable averages, a fraction of the calibration's time.
REPORT_IMAGES = 100


def int8_layer_report(calibrated, calibration_images, options=ExportOptions(),
                      images=REPORT_IMAGES):
    """Where the error of the full-int8 `.tflite` of a `calibrated_int8` model comes from:
    [{"op", "tensor", "sqnr_db", "rmse_over_scale"}] of each int8 op, worst (lowest SQNR)
    first, ops without error last.

    Each op's int8 output is compared with the same op run in float on the same (dequantized)
    inputs, so the figure is the op's own error, not the error it inherits. SQNR is the
    output's mean square over the error's, in dB; RMSE / scale is the error in quantization
    steps (about 0.29 for rounding alone). It is measured on the first `images` of the
    `calibration_images`. "tensor" is the name `ExportOptions.float_ops` takes to keep the
    op in float.
    """
    import csv
    import io

    import tensorflow as tf

    measured = np.asarray(calibration_images, dtype=np.float32)[:images]

    def signal_power(float_output, quantized, scale, zero_point):
        return float(np.mean(np.square(float_output, dtype=np.float64)))

    debugger = tf.lite.experimental.QuantizationDebugger(
        quant_debug_model_content=quantized_int8(calibrated, options, numeric_verify=True),
        debug_dataset=lambda: ([image[None]] for image in measured),
        debug_options=tf.lite.experimental.QuantizationDebugOptions(
            layer_direct_compare_metrics={"signal_power": signal_power}))
    debugger.run()
    dump = io.StringIO()
    debugger.layer_statistics_dump(dump)
    dump.seek(0)
    layers = []
    for row in csv.DictReader(dump):
        noise, signal = float(row["mean_squared_error"]), float(row["signal_power"])
        layers.append({
            "op": row["op_name"], "tensor": row["tensor_name"],
            # None: no error at all (e.g. every input and output zero).
            "sqnr_db": round(float(10 * np.log10(max(signal, 1e-30) / noise)), 2)
            if noise > 0 else None,
            "rmse_over_scale": round(float(np.sqrt(noise) / float(row["scale"])), 3)})
    return sorted(layers, key=lambda layer: (layer["sqnr_db"] is None, layer["sqnr_db"]))


def tflite_op_counts(model_content):
    """{op name: count} of a `.tflite` (bytes)."""
    from ai_edge_litert.interpreter import Interpreter

    interpreter = Interpreter(model_content=model_content)
    return dict(sorted(collections.Counter(
        op["op_name"] for op in tflite_ops(interpreter)).items()))


def tflite_op_outputs(model_content):
    """[(op name, output tensor name)] of a `.tflite` (bytes), in execution order: the
    names `--float-ops` takes."""
    from ai_edge_litert.interpreter import Interpreter

    interpreter = Interpreter(model_content=model_content)
    names = {tensor["index"]: tensor["name"] for tensor in interpreter.get_tensor_details()}
    return [(op["op_name"], names[op["outputs"][0]]) for op in tflite_ops(interpreter)]


def flex_ops(model_content):
    """Names of the Flex (select TF) ops in a `.tflite`; these need TensorFlow on the phone."""
    return sorted(name for name in tflite_op_counts(model_content)
                  if name.startswith("Flex") or name == "DELEGATE")


def tflite_files(model, kinds, calibration_images=None, class_names=None,
                 options=ExportOptions()):
    """{kind: bytes} of the `.tflite` files of `model` (functional), as `export` writes them:
    converted from `tflite_graph` of a float32 copy, with metadata and the labels of
    `class_names`. Arguments as in `convert_tflite` and `export`."""
    return _tflite_files_of_copy(inference_copy(model), kinds, Conversion(
        class_names, calibration_images, options))[0]


@contextlib.contextmanager
def tflite_saved_model(model, rewrites=ExportOptions().rewrites):
    """A temporary SavedModel of `tflite_graph(model, rewrites)` (`model` the inference
    copy): what the converter reads (`saved_model_converter`)."""
    with tempfile.TemporaryDirectory() as scratch:
        source = os.path.join(scratch, "tflite_graph")
        export_saved_model(tflite_graph(model, rewrites), source)
        yield source


def _tflite_files_of_copy(model, kinds, conversion, step=None, names=None, report=False):
    """(`tflite_files` of `model`, already the inference copy; with `report` and int8 among
    `kinds`, int8's `int8_layer_report`, else None). `step(text)` is told of each step, by
    the file `names` of the kinds."""
    labels = None if conversion.class_names is None else labels_text(conversion.class_names)
    calibration_images = conversion.calibration_images
    if calibration_images is not None:
        calibration_images = as_rgb(calibration_images)
    options = conversion.options
    files, layers, calibrated = {}, None, None
    with tflite_saved_model(model, options.rewrites) as source:
        for kind in kinds:
            if step is not None:
                step(f"converting {names[kind]}")
            if kind == "int8" and is_quantization_aware(model):  # its own ranges
                content = quantization_aware_int8(model, calibration_images, options)
            elif kind == "int8":  # calibrated once, for the file and its layer report
                calibrated = calibrated_int8(source, calibration_images, options)
                content = quantized_int8(calibrated, options)
            else:
                content = convert_tflite(source, kind)
            found = flex_ops(content)
            if found:
                raise RuntimeError(f"The {kind} .tflite needs Flex ops {found}, which plain "
                                   "LiteRT cannot run.")
            # Selectively quantized int8 keeps float input and output.
            float_input = kind != "int8" or bool(options.float_ops)
            files[kind] = _with_classifier_metadata(content, model, kind, labels, float_input)
    if report and calibrated is not None:
        if step is not None:
            step(f"measuring the error of each op of {names['int8']}")
        layers = int8_layer_report(calibrated, calibration_images, options)
    elif report and "int8" in kinds and step is not None:  # the step `steps` counted
        step(f"no layer report for {names['int8']}: its ranges are the quantization-aware "
             "model's own")
    return files, layers


def _with_classifier_metadata(content, model, kind, labels, float_input):
    """`content` with the image-classifier metadata that MediaPipe reads: RGB input in
    [0, 255] (fed as is: normalization mean 0, std 1 for float inputs, which MediaPipe
    requires), probabilities out, the labels file attached."""
    from ghostnet_tf import __version__

    height, width = model.input_shape[1:3]
    metadata = image_classifier_metadata(
        name=model.name,
        description=f"{model.name} image classifier ({kind}) of {model.output_shape[-1]} "
                    f"classes, exported by ghostnet_tf {__version__}.",
        version=__version__, input_size=(height, width), input_range=(0, 255),
        normalization=([0.0], [1.0]) if float_input else None,
        labels_file=LABELS_FILE if labels is not None else None, author="ghostnet_tf")
    files = {LABELS_FILE: labels.encode("utf-8")} if labels is not None else None
    return with_metadata(content, metadata, files)


def steps(formats):
    """How many steps writing `formats` takes: one conversion each, and int8's layer
    report."""
    return len(formats) + any(row.name == "int8" for row in formats)


def write(model, folder, formats, conversion, step):
    """Write the `.tflite` file of each of `formats` (rows of the format table) of `model`
    (the inference copy) into `folder`, and the op list of float32 beside it (the names
    `ExportOptions.float_ops` takes): {name: entry}. int8's entry has its layer report
    ("layers", `int8_layer_report`)."""
    contents, layers = _tflite_files_of_copy(model, [f.name for f in formats], conversion,
                                             step, {f.name: f.file for f in formats},
                                             report=True)
    entries = {}
    for tflite in formats:
        content = contents[tflite.name]
        write_file(os.path.join(folder, tflite.file), content)
        if tflite.name == "float32":
            write_file(os.path.join(folder, tflite.file + ".ops.txt"), "".join(
                f"{op}\t{output}\n" for op, output in tflite_op_outputs(content)))
        entries[tflite.name] = {"bytes": len(content),
                                "input_dtype": np.dtype(_input_details(content)["dtype"]).name,
                                "ops": tflite_op_counts(content),
                                "rewrites": list(conversion.options.rewrites)}
    if layers is not None:
        entries["int8"]["layers"] = layers
    return entries


def _input_details(content):
    from ai_edge_litert.interpreter import Interpreter

    return Interpreter(model_content=content).get_input_details()[0]


class TFLitePredictor:
    """Runs a `.tflite` on float32 [0, 255] images, batch by batch, and returns float
    probabilities: quantized inputs and outputs are converted with the file's own scales."""

    def __init__(self, path, num_threads=None):
        from ai_edge_litert.interpreter import Interpreter

        path = os.fspath(path)
        if not os.path.isfile(path):
            raise ArgumentError("model", f"{path}: no such file.")
        try:
            self.interpreter = Interpreter(model_path=path, num_threads=num_threads)
        except (ValueError, RuntimeError) as error:
            raise ArgumentError("model", f"{path} is not a readable .tflite file: "
                                         f"{error}") from None
        self.path = path
        self.input = self.interpreter.get_input_details()[0]
        self.output = self.interpreter.get_output_details()[0]
        self.input_shape = tuple(int(d) for d in self.input["shape"][1:])
        self.num_classes = int(self.output["shape"][-1])
        self._batch = None

    def _resize(self, batch):
        if batch != self._batch:
            self.interpreter.resize_tensor_input(self.input["index"],
                                                 (batch,) + self.input_shape)
            self.interpreter.allocate_tensors()
            self._batch = batch

    def __call__(self, images):
        images = np.asarray(images, dtype=np.float32)
        if self.input_shape[-1] == 3:
            images = as_rgb(images)
        if tuple(images.shape[1:]) != self.input_shape:
            raise ArgumentError("images", f"of shape {tuple(images.shape[1:])} do not fit "
                                          f"{self.path}, which takes {self.input_shape}.")
        self._resize(len(images))
        dtype = self.input["dtype"]
        if dtype != np.float32:
            scale, zero_point = self.input["quantization"]
            info = np.iinfo(dtype)
            images = np.clip(np.round(images / scale + zero_point), info.min, info.max)
        self.interpreter.set_tensor(self.input["index"], images.astype(dtype))
        self.interpreter.invoke()
        outputs = self.interpreter.get_tensor(self.output["index"])
        if outputs.dtype != np.float32:
            scale, zero_point = self.output["quantization"]
            outputs = (outputs.astype(np.float32) - zero_point) * scale
        return outputs


class MediaPipePredictor:
    """Runs a `.tflite` through MediaPipe's `ImageClassifier`, the phone-side client (its
    Python build runs the same C++ as Android, iOS and the web): images go in as the uint8 RGB
    frames an app hands it, scores come out per category. Needs `pip install mediapipe`."""

    def __init__(self, path):
        try:
            from mediapipe.tasks.python import BaseOptions, vision
        except ImportError:
            raise ArgumentError("runtime", "mediapipe needs `pip install mediapipe` "
                                           "(see the README's phone section).") from None
        self.path = os.fspath(path)
        tflite = TFLitePredictor(self.path)
        self.input_shape, self.num_classes = tflite.input_shape, tflite.num_classes
        options = vision.ImageClassifierOptions(
            base_options=BaseOptions(model_asset_path=self.path), max_results=-1)
        try:
            self.classifier = vision.ImageClassifier.create_from_options(options)
        except (ValueError, RuntimeError) as error:
            raise ArgumentError("model", f"MediaPipe cannot load {self.path}: {error}") from None
        # Closed while Python is still whole: MediaPipe's own __del__ fails at exit.
        self._closer = weakref.finalize(self, self.classifier.close)

    def __call__(self, images):
        import mediapipe

        pixels = np.clip(np.round(as_rgb(images)), 0, 255).astype(np.uint8)
        scores = np.zeros((len(pixels), self.num_classes), np.float32)
        for row, image in enumerate(pixels):
            frame = mediapipe.Image(image_format=mediapipe.ImageFormat.SRGB,
                                    data=np.ascontiguousarray(image))
            for category in self.classifier.classify(frame).classifications[0].categories:
                scores[row, category.index] = category.score
        return scores

    def close(self):
        self._closer()


def load(path, runtime="litert"):
    """The `.tflite` at `path`, opened in `runtime` ("litert" or "mediapipe")."""
    tflite = TFLitePredictor(path)
    run = MediaPipePredictor(path) if runtime == "mediapipe" else tflite
    return Opened(run, tflite.input_shape, np.dtype(tflite.input["dtype"]).name,
                  tflite.num_classes, runtime)


# ------------------------------------------------------ quantization-aware models
def is_quantization_aware(model):
    """Whether `model` simulates int8 (`ghostnet_tf.qat.quantization_aware`)."""
    from ghostnet_tf.quantization import ActivationQuantizer

    return any(isinstance(layer, ActivationQuantizer) for layer in model.layers)


def _constants(compute):
    """`compute()` of variables as numpy arrays, computed outside any traced graph: the
    converter reads the ranges of FakeQuant ops only when they are constants."""
    import tensorflow as tf

    with tf.init_scope():
        return tuple(np.asarray(value) for value in compute())


def _tensorflow_forms():
    """{quantization-aware layer class: the same layer written with TensorFlow's FakeQuant
    ops}, the graph from which the converter takes every range and weight scale."""
    import tensorflow as tf

    from ghostnet_tf.quantization import (ActivationQuantizer, QuantizedConv2D, QuantizedDense,
                                          QuantizedDepthwiseConv2D, quantization_range)

    class Activation(ActivationQuantizer):
        def call(self, x, training=False):
            if not _constants(lambda: [self.observed])[0]:
                return x
            minimum, maximum = _constants(lambda: quantization_range(self.minimum,
                                                                     self.maximum))
            return tf.quantization.fake_quant_with_min_max_vars(x, float(minimum),
                                                                float(maximum))

    class TensorFlowKernel:
        def rounded_kernel(self, kernel):
            def folded():
                folded_kernel = self.folded_kernel(kernel)
                return folded_kernel, *self.kernel_range(folded_kernel)
            kernel, minimum, maximum = _constants(folded)
            if minimum.size == 1:
                return tf.quantization.fake_quant_with_min_max_vars(
                    kernel, minimum.item(), maximum.item(), narrow_range=True)
            # The op takes the channels last: a depthwise kernel (h, w, c, m) is viewed as
            # (h, w, 1, c * m), its output channels in order.
            view = kernel if kernel.shape[-1] == minimum.size else np.reshape(
                kernel, (*kernel.shape[:2], 1, -1))
            return tf.reshape(tf.quantization.fake_quant_with_min_max_vars_per_channel(
                view, minimum.reshape(-1), maximum.reshape(-1), narrow_range=True),
                kernel.shape)

    forms = {ActivationQuantizer: Activation}
    for layer in (QuantizedConv2D, QuantizedDepthwiseConv2D, QuantizedDense):
        forms[layer] = type(layer.__name__, (TensorFlowKernel, layer), {})
    return forms


def fake_quant_graph(model):
    """The quantization-aware `model` with TensorFlow's FakeQuant ops where it rounds: the
    graph that converts to the int8 file computing what `model` simulates (its batch norms
    folded, as the converter folds them)."""
    from ghostnet_tf.models.transfer import clone_with_weights
    from ghostnet_tf.qat import fold_batch_norms

    forms = _tensorflow_forms()

    def clone(layer):
        form = forms.get(type(layer))
        return layer if form is None else form.from_config(layer.get_config())

    return clone_with_weights(fold_batch_norms(model), clone)


def quantization_aware_int8(model, calibration_images, options=ExportOptions()):
    """The full-int8 `.tflite` of the quantization-aware `model` (the inference copy): the
    ranges and weight scales are the model's own; `calibration_images` only give ranges to
    the few tensors it does not round (such as a batch norm's inner multiply)."""
    import tensorflow as tf

    images = np.asarray(calibration_images, dtype=np.float32)
    with tflite_saved_model(fake_quant_graph(model), options.rewrites) as source:
        converter = saved_model_converter(source)
        converter.optimizations = [tf.lite.Optimize.DEFAULT]
        converter.representative_dataset = lambda: ([image[None]] for image in images)
        converter.inference_input_type = getattr(tf, options.int8_io)
        converter.inference_output_type = getattr(tf, options.int8_io)
        return converter.convert()
