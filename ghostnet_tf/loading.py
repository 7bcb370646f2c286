"""One way to load any model file into a predictor, and to read an image the way it expects.

`load_predictor(model)` takes a `.keras` file, a `.weights.h5` file with `arch` (a registry
name), a SavedModel folder, a `.tflite` or an `.onnx` file, and returns a `Predictor`: a function from
float32 [0, 255] images (numpy, NHWC) to class probabilities that knows its input shape, the
input type of the file, its class names and, where it can tell, the registry model it is.
`read_image(path, input_shape, transform)` decodes an image file and resizes and crops it as
the model's evaluation transform says. eval.py, predict.py, export.py and the feature-map tool
load models through here; errors name the Python argument (`model`, `arch`).
"""
import dataclasses
import json
import os
import weakref
import zipfile
from typing import Callable, Optional

import numpy as np

from ghostnet_tf.checks import ArgumentError, first_line
from ghostnet_tf.models import registry
from ghostnet_tf.weights import KERAS_SUFFIX, WEIGHTS_SUFFIX, load_weights_file

TFLITE_SUFFIX, ONNX_SUFFIX = ".tflite", ".onnx"
LABELS_FILE = "labels.txt"  # beside an export: one class name per line
EXPORT_REPORT = "export.json"  # beside an export: what was exported, from which model


@dataclasses.dataclass
class Predictor:
    """float32 [0, 255] images (N, H, W, C) -> probabilities (N, classes), as numpy."""
    predict: Callable
    source: str  # the file or folder it was loaded from
    input_shape: tuple  # (height, width, channels); None sizes when the model takes any
    input_dtype: str  # what the file itself takes: "float32", "uint8" or "int8"
    num_classes: int
    class_names: Optional[tuple] = None  # None when nothing names them
    model_name: Optional[str] = None  # the registry name, when known
    runtime: str = "keras"  # what runs it: keras, tensorflow, litert, mediapipe, onnxruntime

    def __call__(self, images):
        if self.input_shape[-1] == 3:
            images = as_rgb(images)
        return self.predict(images)

    @property
    def eval_transform(self):
        """The evaluation transform the model expects (see `registry.eval_transform_for`)."""
        return registry.eval_transform_for(self.model_name, self.input_shape[0])


def as_rgb(images):
    """Grayscale images (N, H, W, 1) as RGB with R = G = B; other images unchanged. Exported
    `.tflite` files of grayscale models take RGB and convert it back exactly."""
    images = np.asarray(images, dtype=np.float32)
    return np.repeat(images, 3, axis=-1) if images.shape[-1] == 1 else images


def model_stem(path):
    """`path` without its extension (.weights.h5 counted whole), for files written beside it."""
    path = os.fspath(path).rstrip("/")
    if path.endswith(WEIGHTS_SUFFIX):
        return path[: -len(WEIGHTS_SUFFIX)]
    return os.path.splitext(path)[0]


def read_class_names(path, argument="labels"):
    """The class names of a labels file, one per line."""
    path = os.fspath(path)
    if not os.path.isfile(path):
        raise ArgumentError(argument, f"{path}: no such file.")
    with open(path, encoding="utf-8") as file:
        names = [line.strip() for line in file if line.strip()]
    if not names:
        raise ArgumentError(argument, f"{path} has no class names (one per line expected).")
    return tuple(names)


def _export_report(model_path):
    """export.json of the export folder holding `model_path`, or {} when there is none."""
    folder = os.path.dirname(os.path.abspath(os.fspath(model_path).rstrip("/")))
    path = os.path.join(folder, EXPORT_REPORT)
    if not os.path.isfile(path):
        return {}
    try:
        with open(path) as file:
            return json.load(file)
    except (OSError, ValueError):
        return {}  # a damaged report only costs the model name


def labels_text(class_names):
    """The labels file, one class name per line: `labels.txt` beside an export or a run's
    checkpoints, and inside each `.tflite`."""
    return "".join(f"{name}\n" for name in class_names)


def _class_names(model_path, num_classes, labels):
    """Names from `labels`, else labels.txt beside the model, else ImageNet's for 1000
    classes, else None."""
    beside = os.path.join(os.path.dirname(os.path.abspath(os.fspath(model_path).rstrip("/"))),
                          LABELS_FILE)
    if labels is None and os.path.isfile(beside):
        labels = beside
    if labels is not None:
        names = read_class_names(labels)
        if len(names) != num_classes:
            raise ArgumentError("labels", f"{labels} has {len(names)} names but the model has "
                                          f"{num_classes} classes.")
        return names
    if num_classes == 1000:
        from ghostnet_tf.imagenet import IMAGENET_CLASSES
        return IMAGENET_CLASSES
    return None


# ---------------------------------------------------------------------------- Keras
def load_keras_model(model, arch=None, classes=None, input_shape=None):
    """A `.keras` file, or a `.weights.h5` file loaded into the registry model `arch` built
    with `classes` and `input_shape` (default: the entry's)."""
    import keras

    path = os.fspath(model)
    if not os.path.isfile(path):
        raise ArgumentError("model", f"{path}: no such file.")
    if path.endswith(KERAS_SUFFIX):
        if not zipfile.is_zipfile(path):
            raise ArgumentError("model", f"{path} is not a .keras file: a .keras file is a zip "
                                         "archive that Keras writes, and this one is not.")
        try:
            return keras.saving.load_model(path, compile=False)
        except Exception as error:  # Keras raises several kinds for unreadable files
            raise ArgumentError("model", f"{path} is not a readable .keras file: "
                                         f"{error}") from None
    if not path.endswith(WEIGHTS_SUFFIX):
        raise ArgumentError("model", f"{path}: expected a .keras file, or a .weights.h5 file "
                                     "with its architecture.")
    if arch is None:
        raise ArgumentError("arch", f"is needed: {path} holds weights only; give its model "
                                    f"name, one of {', '.join(registry.list_models())}.")
    entry = registry.model_entry(arch, argument="arch")
    kwargs = {}
    if classes:
        kwargs["classes"] = classes
    if input_shape is not None and None not in tuple(input_shape):
        kwargs["input_shape"] = tuple(input_shape)
    built = entry.build(**kwargs)
    try:
        load_weights_file(built, path)
    except ArgumentError as error:
        raise ArgumentError("model", error.problem) from None
    return built


def model_by_name_or_file(spec, input_size=None, classes=None):
    """The registry model named `spec` (at `input_size` and with `classes`, default its
    own), or the `.keras` file at `spec`."""
    entry = registry.find_entry(spec)
    if entry is not None:
        kwargs = {}
        if input_size is not None:
            kwargs["input_shape"] = (input_size, input_size, entry.input_shape[-1])
        if classes is not None:
            kwargs["classes"] = classes
        return entry.build(**kwargs)
    if not spec.endswith(KERAS_SUFFIX):
        raise ArgumentError("model", f"{spec!r} is neither a model name "
                                     f"({', '.join(registry.list_models())}) nor a .keras file.")
    return load_keras_model(spec)


def keras_predictor(model, source, labels=None):
    """A Predictor of a built keras.Model."""
    import keras

    def predict(images):
        return keras.ops.convert_to_numpy(model(np.asarray(images, np.float32), training=False))

    num_classes = int(model.output_shape[-1])
    return Predictor(predict, os.fspath(source), tuple(model.input_shape[1:]), "float32",
                     num_classes, _class_names(source, num_classes, labels),
                     model.name if registry.find_entry(model.name) else None)


# ---------------------------------------------------------------------------- LiteRT
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


# ---------------------------------------------------------------------------- ONNX
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


# ---------------------------------------------------------------------------- SavedModel
def saved_model_function(path):
    """(float32 [0, 255] images -> probabilities, input shape, classes) of a SavedModel."""
    import tensorflow as tf

    path = os.fspath(path)
    if not os.path.isfile(os.path.join(path, "saved_model.pb")):
        raise ArgumentError("model", f"{path}: a folder, but not a SavedModel (no "
                                     "saved_model.pb).")
    loaded = tf.saved_model.load(path)
    signature = loaded.signatures.get("serve_float") or loaded.signatures["serving_default"]
    name, spec = next(iter(signature.structured_input_signature[1].items()))
    shape = tuple(spec.shape[1:])
    output_spec = next(iter(signature.structured_outputs.values()))

    def predict(images):
        images = np.asarray(images)
        if tuple(images.shape[1:]) != shape:
            raise ArgumentError("images", f"of shape {tuple(images.shape[1:])} do not fit "
                                          f"{path}, which takes {shape}.")
        outputs = signature(**{name: tf.cast(images, spec.dtype)})
        return next(iter(outputs.values())).numpy()

    return predict, shape, int(output_spec.shape[-1])


# ---------------------------------------------------------------------------- any file
RUNTIMES = ("litert", "mediapipe")  # what runs a .tflite


def load_predictor(model, arch=None, classes=None, input_shape=None, labels=None,
                   runtime="litert"):
    """A `Predictor` of any model file.

    Args:
        model: a `.keras` file, a `.weights.h5` file (with `arch`), a SavedModel folder, a
            `.tflite` or an `.onnx` file.
        arch: registry name of the architecture of a `.weights.h5` file.
        classes, input_shape: of the model to build for a `.weights.h5` file (default: the
            registry entry's).
        labels: a labels file naming the classes (default: labels.txt beside the model).
        runtime: what runs a `.tflite`: "litert" (the interpreter) or "mediapipe" (its
            ImageClassifier, which reads the file's metadata).
    """
    if runtime not in RUNTIMES:
        raise ArgumentError("runtime", f"must be one of {', '.join(RUNTIMES)}, got "
                                       f"{runtime!r}.")
    path = os.fspath(model)
    if os.path.isdir(path):
        predict, shape, num_classes = saved_model_function(path)
        return Predictor(predict, path, shape, "float32", num_classes,
                         _class_names(path, num_classes, labels),
                         _known_name(_export_report(path).get("model")), "tensorflow")
    check_model_path(path)
    if path.endswith(TFLITE_SUFFIX):
        tflite = TFLitePredictor(path)
        run = MediaPipePredictor(path) if runtime == "mediapipe" else tflite
        return Predictor(run, path, tflite.input_shape, np.dtype(tflite.input["dtype"]).name,
                         tflite.num_classes, _class_names(path, tflite.num_classes, labels),
                         _known_name(_export_report(path).get("model")), runtime)
    if runtime != "litert":
        raise ArgumentError("runtime", f"{runtime} runs .tflite files only; {path} is not one.")
    if path.endswith(ONNX_SUFFIX):
        onnx = ONNXPredictor(path)
        return Predictor(onnx, path, onnx.input_shape, "float32", onnx.num_classes,
                         _class_names(path, onnx.num_classes, labels),
                         _known_name(_export_report(path).get("model")), "onnxruntime")
    if not path.endswith((KERAS_SUFFIX, WEIGHTS_SUFFIX)):
        raise ArgumentError("model", f"{path}: expected a .keras file, a .weights.h5 file with "
                                     "its architecture, a SavedModel folder, a .tflite or an "
                                     ".onnx file.")
    return keras_predictor(load_keras_model(path, arch, classes, input_shape), path, labels)


def check_model_path(path):
    """ArgumentError("model") when nothing is at `path`: said before anything else."""
    if not os.path.exists(path):
        raise ArgumentError("model", f"{path}: no such file or folder.")


def _known_name(name):
    return name if registry.find_entry(name) else None


def read_image(path, input_shape, transform=None):
    """The image file at `path` as the model sees it: float32 [0, 255] of `input_shape`,
    resized and center-cropped by `transform` (an `EvalTransform`; default: the one
    `registry.eval_transform_for` gives for that input size)."""
    import tensorflow as tf

    from ghostnet_tf.data.pipelines import decode_eval_image, image_is_valid

    path = os.fspath(path)
    if not os.path.isfile(path):
        raise ArgumentError("image", f"{path}: no such file.")
    contents = tf.io.read_file(path)
    if not bool(image_is_valid(contents)):
        raise ArgumentError("image", f"{path} is not a complete JPEG, PNG, BMP or GIF image.")
    height, width, channels = input_shape
    transform = transform or registry.eval_transform_for(None, height)
    image = decode_eval_image(contents, height, channels=channels, transform=transform)
    return image.numpy().astype("float32")
