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
import zipfile
from typing import Callable, Optional

import numpy as np

from ghostnet_tf.checks import ArgumentError
from ghostnet_tf.export import litert, onnx
from ghostnet_tf.export.common import EXPORT_REPORT, LABELS_FILE, as_rgb
from ghostnet_tf.export.formats import target_of
from ghostnet_tf.models import registry
from ghostnet_tf.weights import KERAS_SUFFIX, WEIGHTS_SUFFIX, load_weights_file

RUNTIMES = litert.RUNTIMES + onnx.RUNTIMES  # what may run a file (the default: litert)



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


# ---------------------------------------------------------------------------- any file
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
        runtime: what runs a `.tflite`: "litert" (the interpreter, the default for every
            file) or "mediapipe" (its ImageClassifier, which reads the file's metadata); what
            runs an `.onnx`: "onnxruntime" (the default) or "openvino".
    """
    if runtime not in RUNTIMES:
        raise ArgumentError("runtime", f"must be one of {', '.join(RUNTIMES)}, got "
                                       f"{runtime!r}.")
    path = os.fspath(model)
    if not os.path.isdir(path):
        check_model_path(path)
    target = target_of(path)
    if target is None and os.path.isdir(path):
        raise ArgumentError("model", f"{path}: a folder, but not a SavedModel (no "
                                     "saved_model.pb) nor a keras-hub preset (no metadata.json).")
    if runtime != "litert" and runtime not in getattr(target, "RUNTIMES", ()):
        kind = ".tflite" if runtime in litert.RUNTIMES else ".onnx"
        raise ArgumentError("runtime", f"{runtime} runs {kind} files only; {path} is not one.")
    if target is not None:
        opened = target.load(path, runtime)
        return Predictor(opened.predict, path, opened.input_shape, opened.input_dtype,
                         opened.num_classes, _class_names(path, opened.num_classes, labels),
                         _known_name(_export_report(path).get("model")), opened.runtime)
    if not path.endswith((KERAS_SUFFIX, WEIGHTS_SUFFIX)):
        raise ArgumentError("model", f"{path}: expected a .keras file, a .weights.h5 file with "
                                     "its architecture, a SavedModel or keras-hub preset "
                                     "folder, a .tflite or an .onnx file.")
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

    from ghostnet_tf.data.images import decode_eval_image, image_is_valid

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
