"""Export to SavedModel, TFLite (float32, float16, dynamic-range int8, full int8) and ONNX
(float32, and int8 in ONNX Runtime's QDQ form).

Everything goes through a SavedModel (`keras.export.ExportArchive`) and
`tf.lite.TFLiteConverter.from_saved_model`: `from_keras_model` fails on some Keras 3 models.
The SavedModel has two signatures: `serving_default` takes uint8 images, the form a camera or
a decoded JPEG gives, and `serve_float` takes float32 images in [0, 255], which the converter
reads. Both return class probabilities; preprocessing is inside the model.

The `.tflite` files are made for phones: they take RGB images (a grayscale model converts
them in its graph), the full-int8 file takes uint8 pixels as they are by default, every file
carries LiteRT metadata with the labels (what MediaPipe's ImageClassifier needs), and the
graph they are converted from has exact rewrites that make it faster in LiteRT
(`ghostnet_tf.export_rewrites`).

The `.onnx` files are for the runtimes and vendor compilers that start from ONNX (ONNX
Runtime, TensorRT, OpenVINO, the NPU toolchains): Keras' own `model.export(format="onnx")`
(tf2onnx under the TensorFlow backend) of the same inference copy, without the LiteRT
rewrites. Input "images": float32 NHWC RGB (or the model's own channels) in [0, 255], the
normalization inside; output: class probabilities. `model_onnx_int8.onnx` is ONNX Runtime's
static quantization of it (QDQ, per-channel weights, calibrated on the export's calibration
images), the form TensorRT and the vendor compilers read.
"""
import collections
import dataclasses
import os
import shutil
import tempfile

import numpy as np

from ghostnet_tf.atomic import read_json, write_file, write_json
from ghostnet_tf.checks import ArgumentError
from ghostnet_tf.compat import disable_per_channel_quantization, tflite_ops
from ghostnet_tf.export_rewrites import REWRITES, check_rewrites, tflite_graph
from ghostnet_tf.loading import (
    EXPORT_REPORT,
    LABELS_FILE,
    ONNXPredictor,
    TFLitePredictor,
    as_rgb,
    labels_text,
    saved_model_function,
)
from ghostnet_tf.tflite_metadata import image_classifier_metadata, with_metadata

TFLITE_KINDS = ("float32", "float16", "dynamic_int8", "int8")
ONNX_KINDS = ("onnx", "onnx_int8")
FORMATS = ("saved_model",) + TFLITE_KINDS  # the default: what LiteRT and TF Serving need
KNOWN_FORMATS = FORMATS + ONNX_KINDS  # ONNX needs the onnx extra (tf2onnx, onnxruntime)
CALIBRATED_KINDS = ("int8", "onnx_int8")
EXPORT_FILES = {"onnx": "model.onnx", "onnx_int8": "model_onnx_int8.onnx",
                **{kind: f"model_{kind}.tflite" for kind in TFLITE_KINDS}}
# Float exports must pick the same class as the Keras model on at least this share of images.
FLOAT_KINDS = ("saved_model", "float32", "float16", "onnx")
FLOAT_AGREEMENT_GOAL = 0.995


def _is_augmentation(layer):
    """Keras' random augmentation layers, which are the identity at inference."""
    import keras
    return type(layer).__name__.startswith("Random") or isinstance(
        layer, (keras.layers.RandAugment, keras.layers.AugMix, keras.layers.MixUp,
                keras.layers.CutMix))


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


def _replace_directory(build, path):
    """Write a directory through `build(temporary_path)`, then move it into place, so that a
    failed or killed build leaves any earlier one at `path` untouched, and the new one is
    never mixed with it. Returns what `build` returns."""
    parent = os.path.dirname(os.path.abspath(path))
    os.makedirs(parent, exist_ok=True)
    temporary = tempfile.mkdtemp(prefix=f".{os.path.basename(path)}.staging-", dir=parent)
    try:
        built = build(os.path.join(temporary, "new"))
        if os.path.exists(path):
            os.replace(path, os.path.join(temporary, "old"))
        os.replace(os.path.join(temporary, "new"), path)
    finally:
        shutil.rmtree(temporary, ignore_errors=True)
    return built


def export_saved_model(model, path):
    """A SavedModel of `model` (float32 [0, 255] images -> probabilities) at `path`."""
    import keras
    import tensorflow as tf

    shape = tuple(model.input_shape)
    if None in shape[1:]:
        raise ArgumentError("model", f"{model.name} has the input shape {shape}, which is not "
                                     "fixed: export needs a height, width and channel count.")
    archive = keras.export.ExportArchive()
    archive.track(model)

    def from_uint8(images):
        return model(tf.cast(images, tf.float32), training=False)

    def from_float(images):
        return model(images, training=False)

    archive.add_endpoint("serving_default", from_uint8,
                         input_signature=[tf.TensorSpec((None,) + shape[1:], tf.uint8, "images")])
    archive.add_endpoint("serve_float", from_float,
                         input_signature=[tf.TensorSpec((None,) + shape[1:], tf.float32,
                                                        "images")])
    _replace_directory(lambda temporary: archive.write_out(temporary, verbose=False), path)


def convert_tflite(saved_model_dir, kind, calibration_images=None, int8_io="uint8",
                   float_ops=(), per_channel=True):
    """The bytes of a `.tflite` of the SavedModel's `serve_float` signature.

    Args:
        kind: "float32", "float16" (float16 weights), "dynamic_int8" (int8 weights, float
            activations) or "int8" (everything int8, calibrated on `calibration_images`).
        calibration_images: float32 images in [0, 255], for "int8".
        int8_io: input and output type of "int8" models, "uint8" (what phone image
            pipelines deliver) or "int8". Either way the input's quantization is set so that
            a code is the pixel value itself (scale 1, zero point 0 or -128).
        float_ops: for "int8", ops kept in float (selective quantization): op types such as
            "DEPTHWISE_CONV_2D" or "MEAN", or output tensor names of single ops, as
            `tflite_op_outputs` lists them.
        per_channel: for "int8", one scale per output channel of each convolution (the
            converter's default) or one per tensor.
    """
    import tensorflow as tf

    if kind not in TFLITE_KINDS:
        raise ArgumentError("kind", f"{kind!r} is not a TFLite kind: expected one of "
                                    f"{', '.join(TFLITE_KINDS)}.")
    converter = tf.lite.TFLiteConverter.from_saved_model(saved_model_dir,
                                                         signature_keys=["serve_float"])
    # Builtin ops only: a model with Flex (select TF) ops would need the large Flex delegate.
    converter.target_spec.supported_ops = [tf.lite.OpsSet.TFLITE_BUILTINS]
    if kind == "float16":
        converter.optimizations = [tf.lite.Optimize.DEFAULT]
        converter.target_spec.supported_types = [tf.float16]
    elif kind == "dynamic_int8":
        converter.optimizations = [tf.lite.Optimize.DEFAULT]
    elif kind == "int8":
        if calibration_images is None or len(calibration_images) == 0:
            raise ArgumentError("calibration_images", "are needed: full-integer int8 is "
                                                      "calibrated on them.")
        if int8_io not in ("int8", "uint8"):
            raise ArgumentError("int8_io", f"must be int8 or uint8, got {int8_io!r}.")
        images = np.asarray(calibration_images, dtype=np.float32)

        def representative():
            for image in images:
                yield [image[None]]

        converter.optimizations = [tf.lite.Optimize.DEFAULT]
        converter.representative_dataset = representative
        converter.target_spec.supported_ops = [tf.lite.OpsSet.TFLITE_BUILTINS_INT8]
        converter.inference_input_type = getattr(tf, int8_io)
        converter.inference_output_type = getattr(tf, int8_io)
        if not per_channel:
            disable_per_channel_quantization(converter)
        if float_ops:
            return _selectively_quantized(converter, representative, float_ops, int8_io)
        return _pixel_codes(converter.convert())
    return converter.convert()


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


def _selectively_quantized(converter, representative, float_ops, int8_io):
    """Full int8 except `float_ops`, through TensorFlow's quantization debugger (the
    documented way to keep chosen ops in float). Names in capitals are op types
    ("DEPTHWISE_CONV_2D"), others the output tensor names of single ops. The model then takes
    and returns float32."""
    import tensorflow as tf

    # Mixed int8/float graphs need the float builtins too.
    converter.target_spec.supported_ops = [tf.lite.OpsSet.TFLITE_BUILTINS_INT8,
                                           tf.lite.OpsSet.TFLITE_BUILTINS]
    op_types = [name for name in float_ops if name.isupper() and "/" not in name]
    nodes = [name for name in float_ops if name not in op_types]
    options = tf.lite.experimental.QuantizationDebugOptions(
        denylisted_ops=op_types or None, denylisted_nodes=nodes or None)
    debugger = tf.lite.experimental.QuantizationDebugger(
        converter=converter, debug_dataset=representative, debug_options=options)
    return debugger.get_nondebug_quantized_model()


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


def compare(reference, candidate, images, batch_size=64):
    """Top-1 agreement and largest probability difference of two predictors on `images`."""
    agree, largest = 0, 0.0
    for start in range(0, len(images), batch_size):
        batch = images[start:start + batch_size]
        expected, actual = np.asarray(reference(batch)), np.asarray(candidate(batch))
        agree += int((expected.argmax(axis=1) == actual.argmax(axis=1)).sum())
        largest = max(largest, float(np.abs(expected - actual).max()))
    return {"images": len(images), "top1_agreement": agree / len(images),
            "max_probability_difference": largest}


def balanced_images(batches, num_classes, count):
    """Up to `count` images from `batches` of (images, labels), every class represented:
    at most ceil(count / num_classes) of each class, in the order they come."""
    quota = -(-count // num_classes)
    taken = np.zeros(num_classes, dtype=np.int64)
    chosen = []
    for images, labels in batches:
        labels = np.asarray(labels)
        if labels.ndim == 2:
            labels = labels.argmax(axis=1)
        for image, label in zip(np.asarray(images), labels):
            if taken[label] < quota:
                taken[label] += 1
                chosen.append(image)
        if len(chosen) >= count or taken.min() >= quota:
            break
    return np.stack(chosen[:count]) if chosen else np.zeros((0,), np.float32)




def export(model, output_dir, formats=FORMATS, class_names=None, calibration_images=None,
           check_images=None, int8_io="uint8", float_ops=(), per_channel=True,
           rewrites=REWRITES, replace=False, progress=None):
    """Export `model` to `output_dir` in each of `formats` and check each against it.

    Writes `saved_model/`, `model_<kind>.tflite` for each TFLite kind (RGB input, LiteRT
    metadata with the labels, graph `rewrites` from `ghostnet_tf.export_rewrites`),
    `labels.txt`, a `<file>.check.json` beside each export and `export.json` with all of
    them. The export is built in a staging folder beside `output_dir` and swapped in whole:
    a failure or a kill leaves the folder as it was.

    Into an earlier export of the same model (the same weights), only the files of
    `formats` are replaced: the other formats' files and everything else in the folder (the
    reports `eval.py` writes there) stay, and `export.json` lists them all. An earlier
    export of another model is refused unless `replace`: then that export's own files are
    removed, and files it did not write stay. A folder that holds other files (no
    export.json) is refused.

    `progress(text, done, total)`, when given, is called as each step begins (converting a
    format, checking a file).

    Returns the report (dict) written to `export.json`.
    """
    check_formats(formats)
    check_rewrites(rewrites)
    calibrated = [kind for kind in formats if kind in CALIBRATED_KINDS]
    if calibrated and (calibration_images is None or len(calibration_images) == 0):
        raise ArgumentError("calibration_images", f"are needed: formats include "
                                                  f"{calibrated[0]}, which is calibrated on "
                                                  "them.")
    output_dir = os.fspath(output_dir)
    check_output_dir(output_dir)
    earlier = _EarlierExport.of(output_dir, model, replace)
    checked = check_images is not None and len(check_images) > 0
    step = _Steps(progress, 1 + len(formats) + checked * len(formats)
                  + ("onnx_int8" in formats and "onnx" not in formats))
    step("preparing the inference graph")
    model = inference_copy(model)
    conversion = _Conversion(class_names, calibration_images, int8_io, tuple(float_ops),
                             per_channel, tuple(rewrites))

    def build(staging):
        os.makedirs(staging)
        report = _write_exports(model, staging, output_dir, formats, check_images, conversion,
                                earlier.kept_entries(formats), earlier.fingerprint, step)
        earlier.carry_into(staging)
        return report
    return _replace_directory(build, output_dir)


class _Steps:
    """Counts an export's steps for its `progress` callback (none: nothing is said)."""

    def __init__(self, progress, total):
        self.progress, self.total, self.done = progress, total, 0

    def __call__(self, text):
        if self.progress is not None:
            self.progress(text, self.done, self.total)
        self.done += 1


def weights_sha256(model):
    """A digest of `model`'s weights: tells whether two exports are of the same model."""
    import hashlib

    import keras

    digest = hashlib.sha256()
    for weight in model.weights:
        digest.update(np.ascontiguousarray(keras.ops.convert_to_numpy(weight)).tobytes())
    return digest.hexdigest()


class _EarlierExport:
    """What an export into `output_dir` keeps of what is there: every file but those the new
    export writes, and, with `replace`, those the earlier export wrote."""

    def __init__(self, folder, report, merge, fingerprint):
        self.folder, self.report, self.merge = folder, report, merge
        self.fingerprint = fingerprint  # of the model now exported: `weights_sha256`

    @classmethod
    def of(cls, output_dir, model, replace):
        """The earlier export in `output_dir` (none when the folder is new or empty);
        ArgumentError("replace") when it is of another model and `replace` is not set."""
        fingerprint = weights_sha256(model)
        report = read_json(os.path.join(output_dir, EXPORT_REPORT))
        if not isinstance(report, dict):
            return cls(output_dir if os.path.isdir(output_dir) else None, {}, False,
                       fingerprint)
        same = report.get("model_sha256") == fingerprint
        if not same and not replace:
            whose = ("another model (its weights differ)" if "model_sha256" in report else
                     "a model this version cannot compare with, written by an earlier version")
            raise ArgumentError("replace", f"is needed: {output_dir} holds an export of "
                                           f"{whose}. Give a new output folder, or replace "
                                           "that export (its own files are removed, other "
                                           "files stay).")
        return cls(output_dir, report, same and not replace, fingerprint)

    def kept_entries(self, formats):
        """The report entries of the earlier export's formats that this one leaves."""
        if not self.merge:
            return {}
        kept = {}
        for kind, entry in self.report.get("exports", {}).items():
            name = os.path.basename(entry["path"])
            if kind not in formats and os.path.exists(os.path.join(self.folder, name)):
                kept[kind] = {**entry, "path": os.path.join(self.folder, name), "kept": True}
        return kept

    def _own_files(self):
        """The names of the files that the earlier export wrote."""
        names = {EXPORT_REPORT, LABELS_FILE}
        for entry in self.report.get("exports", {}).values():
            name = os.path.basename(entry["path"])
            names |= {name, f"{name}.check.json", f"{name}.ops.txt"}
        return names

    def carry_into(self, staging):
        """Hard-link (or copy) what is kept into the new export's staging folder."""
        if self.folder is None:
            return
        written = set(os.listdir(staging))
        dropped = set() if self.merge else self._own_files()
        for name in sorted(set(os.listdir(self.folder)) - written - dropped):
            source, target = os.path.join(self.folder, name), os.path.join(staging, name)
            if os.path.isdir(source):
                shutil.copytree(source, target, copy_function=_link_or_copy)
            else:
                _link_or_copy(source, target)


def _link_or_copy(source, target):
    try:
        os.link(source, target)
    except OSError:  # a file system without hard links
        shutil.copy2(source, target)


def check_output_dir(output_dir):
    """Refuse an output folder that is a file, or a folder of other things than an export."""
    if os.path.isfile(output_dir):
        raise ArgumentError("output_dir", f"{output_dir} is a file; give a folder to export "
                                          "into.")
    if os.path.isdir(output_dir) and os.listdir(output_dir) and \
            not os.path.isfile(os.path.join(output_dir, EXPORT_REPORT)):
        raise ArgumentError("output_dir", f"{output_dir} holds other files and no "
                                          f"{EXPORT_REPORT}: give a new or empty folder, or "
                                          "an earlier export to replace.")


def tflite_files(model, kinds, calibration_images=None, class_names=None, int8_io="uint8",
                 float_ops=(), per_channel=True, rewrites=REWRITES):
    """{kind: bytes} of the `.tflite` files of `model` (functional), as `export` writes them:
    converted from `tflite_graph` of a float32 copy, with metadata and the labels of
    `class_names`. Arguments as in `convert_tflite` and `export`."""
    return _tflite_files_of_copy(inference_copy(model), kinds, _Conversion(
        class_names, calibration_images, int8_io, tuple(float_ops), per_channel,
        tuple(rewrites)))


@dataclasses.dataclass(frozen=True)
class _Conversion:
    """What every `.tflite` of one export is converted with (`export`'s arguments)."""
    class_names: object
    calibration_images: object
    int8_io: str
    float_ops: tuple
    per_channel: bool
    rewrites: tuple


def _tflite_files_of_copy(model, kinds, conversion, step=None):
    """`tflite_files` of `model`, already the inference copy; `step(text)` is told of each
    conversion."""
    labels = None if conversion.class_names is None else labels_text(conversion.class_names)
    calibration_images = conversion.calibration_images
    if calibration_images is not None:
        calibration_images = as_rgb(calibration_images)
    files = {}
    with tempfile.TemporaryDirectory() as scratch:
        source = os.path.join(scratch, "tflite_graph")
        export_saved_model(tflite_graph(model, conversion.rewrites), source)
        for kind in kinds:
            if step is not None:
                step(f"converting {EXPORT_FILES[kind]}")
            content = convert_tflite(source, kind, calibration_images, conversion.int8_io,
                                     conversion.float_ops, conversion.per_channel)
            found = flex_ops(content)
            if found:
                raise RuntimeError(f"The {kind} .tflite needs Flex ops {found}, which plain "
                                   "LiteRT cannot run.")
            # Selectively quantized int8 keeps float input and output.
            float_input = kind != "int8" or bool(conversion.float_ops)
            files[kind] = _with_classifier_metadata(content, model, kind, labels, float_input)
    return files


def _write_exports(model, folder, output_dir, formats, check_images, conversion,
                   kept_entries, fingerprint, step):
    """Write every export of `model` into `folder`, whose contents will be moved to
    `output_dir` (the paths the report gives), and the report, which also lists
    `kept_entries`, those of an earlier export of the model (`fingerprint`) that stay."""
    import keras

    def keras_predict(images):
        return keras.ops.convert_to_numpy(model(images, training=False))

    # The model's name lets the loading layer find its registry entry (eval transform).
    report = {"model": model.name, "model_sha256": fingerprint,
              "input_shape": list(model.input_shape[1:]),
              "tflite_input_shape": list(model.input_shape[1:3]) + [3],
              "exports": dict(kept_entries)}
    if conversion.class_names is not None:
        write_file(os.path.join(folder, LABELS_FILE), labels_text(conversion.class_names))
    saved_model = os.path.join(folder, "saved_model")
    if "saved_model" in formats:
        step("writing saved_model/")
        export_saved_model(model, saved_model)
    contents = _tflite_files_of_copy(
        model, [kind for kind in formats if kind in TFLITE_KINDS], conversion, step)
    if any(kind in ONNX_KINDS for kind in formats):
        contents.update(onnx_files(model, [kind for kind in formats if kind in ONNX_KINDS],
                                   conversion.calibration_images, conversion.per_channel,
                                   step))
    for kind in formats:
        if kind == "saved_model":
            name, predict = "saved_model", saved_model_function(saved_model)[0]
            entry = {"path": os.path.join(output_dir, name)}
        elif kind in ONNX_KINDS:
            content, name = contents[kind], EXPORT_FILES[kind]
            write_file(os.path.join(folder, name), content)
            predict = ONNXPredictor(os.path.join(folder, name))
            entry = {"path": os.path.join(output_dir, name), "bytes": len(content),
                     "input_dtype": "float32", "ops": onnx_op_counts(content)}
        else:
            content = contents[kind]
            name = EXPORT_FILES[kind]
            write_file(os.path.join(folder, name), content)
            if kind == "float32":
                write_file(os.path.join(folder, name + ".ops.txt"), "".join(
                    f"{op}\t{output}\n" for op, output in tflite_op_outputs(content)))
            predict = TFLitePredictor(os.path.join(folder, name))
            entry = {"path": os.path.join(output_dir, name), "bytes": len(content),
                     "input_dtype": np.dtype(predict.input["dtype"]).name,
                     "ops": tflite_op_counts(content), "rewrites": list(conversion.rewrites)}
        if check_images is not None and len(check_images):
            step(f"checking {name} on {len(check_images)} images")
            entry["check"] = compare(keras_predict, predict, check_images)
            if kind in FLOAT_KINDS:
                entry["check"]["meets_float_goal"] = (
                    entry["check"]["top1_agreement"] >= FLOAT_AGREEMENT_GOAL)
        write_json(os.path.join(folder, f"{name}.check.json"), {"kind": kind, **entry})
        report["exports"][kind] = entry
    report["exports"] = {kind: report["exports"][kind] for kind in KNOWN_FORMATS
                         if kind in report["exports"]}
    write_json(os.path.join(folder, EXPORT_REPORT), report)
    return report


def onnx_files(model, kinds, calibration_images=None, per_channel=True, step=None):
    """{kind: bytes} of the `.onnx` files of `model` (the inference copy): "onnx", Keras'
    `model.export(format="onnx")`, and "onnx_int8", ONNX Runtime's static quantization of it
    (QDQ, int8 weights and activations, calibrated on `calibration_images`)."""
    import logging

    import tensorflow as tf

    shape = tuple(model.input_shape[1:])
    files = {}
    with tempfile.TemporaryDirectory() as scratch:
        path = os.path.join(scratch, "model.onnx")
        if step is not None:
            step("converting model.onnx")
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
                step("quantizing model_onnx_int8.onnx")
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


def check_formats(formats):
    unknown = [f for f in formats if f not in KNOWN_FORMATS]
    if unknown:
        raise ArgumentError("formats", f"has unknown {', '.join(unknown)}; expected some of "
                                       f"{', '.join(KNOWN_FORMATS)}.")
    if not formats:
        raise ArgumentError("formats", f"is empty; expected some of "
                                       f"{', '.join(KNOWN_FORMATS)}.")
    if any(kind in ONNX_KINDS for kind in formats):
        import importlib.util
        missing = [module for module in ("tf2onnx", "onnxruntime")
                   if importlib.util.find_spec(module) is None]
        if missing:
            raise ArgumentError("formats", f"include ONNX, which needs {' and '.join(missing)}"
                                           ': pip install -e ".[onnx]".')


def default_output_dir(model_path):
    """Where an export of the model file at `model_path` goes by default: beside it."""
    from ghostnet_tf.loading import model_stem
    return f"{model_stem(model_path)}_export"


def export_model_file(model, output_dir=None, formats=FORMATS, source=None, arch=None,
                      calibration_images=1000, check_images=1000, int8_io="uint8",
                      float_ops=(), per_channel=True, rewrites=REWRITES, replace=False,
                      progress=None):
    """Export the model file `model` (`.keras`, or `.weights.h5` with `arch`) with `export`,
    checked on `check_images` test images of `source` (a `DataSource`, or a dataset name)
    and calibrated on `calibration_images` train images of it (every class represented).
    Images are prepared with the model's evaluation transform (the source's `interpolation`
    and `crop_pct` over it). Without a source nothing is checked, and int8 cannot be
    calibrated.

    Returns (report, output_dir).
    """
    from ghostnet_tf.evaluation import check_input_fits
    from ghostnet_tf.loading import KERAS_SUFFIX, WEIGHTS_SUFFIX, keras_predictor, load_keras_model

    formats = list(formats)
    check_formats(formats)
    path = os.fspath(model)
    if not os.path.isfile(path):
        raise ArgumentError("model", f"{path}: no such file.")
    if not path.endswith((KERAS_SUFFIX, WEIGHTS_SUFFIX)):
        raise ArgumentError("model", f"{path}: expected a .keras file, or a .weights.h5 file "
                                     "with its architecture.")
    if path.endswith(WEIGHTS_SUFFIX) and arch is None:
        raise ArgumentError("arch", f"is needed: {path} holds weights only; give its model "
                                    "name (and a dataset, which sets its classes and input "
                                    "size).")
    calibrated = [kind for kind in formats if kind in CALIBRATED_KINDS]
    if calibrated and not source:
        raise ArgumentError("source", f"is needed: formats include {calibrated[0]}, which is "
                                       "calibrated on the dataset's train split.")
    if calibrated and calibration_images < 1:
        raise ArgumentError("calibration_images", f"must be at least 1 for {calibrated[0]}, "
                                                  f"got {calibration_images}.")
    if path.endswith(WEIGHTS_SUFFIX) and not source:
        raise ArgumentError("source", f"is needed: {path} holds weights only, and the "
                                       "dataset sets the classes and input size of the model.")
    from ghostnet_tf.data.source import DataSource
    from ghostnet_tf.evaluation import numpy_batches

    source = source and DataSource.of(source)

    def dataset_of(split, image_size=None, transform=None, arch=None):
        return _export_dataset(source, split, image_size, transform, arch)

    info = None
    if path.endswith(WEIGHTS_SUFFIX):
        info = dataset_of("test", arch=arch)[1]
    keras_model = load_keras_model(
        path, arch, classes=info and info.num_classes, input_shape=info and info.image_shape)
    predictor = keras_predictor(keras_model, path)
    output_dir = os.fspath(output_dir or default_output_dir(path))
    check_output_dir(output_dir)
    _EarlierExport.of(output_dir, keras_model, replace)  # refused before any data is read
    calibration = check = class_names = None
    if source:
        transform = predictor.eval_transform
        test_set, info = dataset_of("test", predictor.input_shape[0], transform)
        class_names = info.class_names
        check_input_fits(predictor, info)
        check = _first_images(numpy_batches(test_set), check_images) if check_images else None
        if calibrated:
            train_set, _ = dataset_of("train", predictor.input_shape[0], transform)
            calibration = balanced_images(numpy_batches(train_set), info.num_classes,
                                          calibration_images)
    report = export(keras_model, output_dir, formats, class_names=class_names,
                    calibration_images=calibration, check_images=check, int8_io=int8_io,
                    float_ops=float_ops, per_channel=per_channel, rewrites=rewrites,
                    replace=replace, progress=progress)
    return report, output_dir


_EXPORT_BATCH = 64


def _export_dataset(source, split, image_size=None, transform=None, arch=None):
    """Evaluation-preprocessed images of `split` in a fixed shuffled order (image folders
    are sorted by class, and calibration wants every class early), and the DatasetInfo."""
    from ghostnet_tf.data import make_dataset
    from ghostnet_tf.models import registry

    if arch is not None:
        entry = registry.model_entry(arch, argument="arch")
        image_size, transform = entry.input_shape[0], entry.eval_transform
    return make_dataset(source, split, batch_size=_EXPORT_BATCH, training=False,
                        shuffle=True, seed=0, image_size=image_size, eval_transform=transform)


def _first_images(batches, count):
    """The first `count` images of (images, labels) numpy batches."""
    images, taken = [], 0
    for batch, _ in batches:
        images.append(batch)
        taken += len(batch)
        if taken >= count:
            break
    return np.concatenate(images)[:count]


def describe(report):
    """A table of an export report: file, size, top-1 agreement, largest difference."""
    lines = [f"{'format':<13} {'MB':>7} {'top-1 agree':>11} {'max |dp|':>9}  file"]
    for kind, entry in report["exports"].items():
        size = f"{entry['bytes'] / 2**20:7.2f}" if "bytes" in entry else f"{'-':>7}"
        check = entry.get("check")
        agree = f"{check['top1_agreement']:11.2%}" if check else f"{'-':>11}"
        diff = f"{check['max_probability_difference']:9.2e}" if check else f"{'-':>9}"
        kept = "  (kept from the earlier export)" if entry.get("kept") else ""
        lines.append(f"{kind:<13} {size} {agree} {diff}  {entry['path']}{kept}")
    return "\n".join(lines)

