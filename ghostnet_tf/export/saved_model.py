"""The SavedModel target: `saved_model/`, for TF Serving and TensorFlow, and the graph that
the `.tflite` files are converted from.

Written with `keras.export.ExportArchive`, with two signatures: `serving_default` takes uint8
images, the form a camera or a decoded JPEG gives, and `serve_float` takes float32 images in
[0, 255], which the converters read. Both return class probabilities; preprocessing is inside
the model.
"""
import os

import numpy as np

from ghostnet_tf.atomic import replace_directory
from ghostnet_tf.checks import ArgumentError
from ghostnet_tf.export.common import Opened

SUFFIX = None  # a folder
MARKER = "saved_model.pb"  # the file that tells a SavedModel folder from other folders


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
    replace_directory(lambda temporary: archive.write_out(temporary, verbose=False), path)


def steps(formats):
    """How many steps writing `formats` takes: one."""
    return len(formats)


def write(model, folder, formats, conversion, step):
    """Write `saved_model/` of `model` (the inference copy) into `folder`: {name: entry}."""
    (saved_model,) = formats
    step(f"writing {saved_model.file}/")
    export_saved_model(model, os.path.join(folder, saved_model.file))
    return {saved_model.name: {}}


def saved_model_function(path):
    """(float32 [0, 255] images -> probabilities, input shape, classes) of a SavedModel."""
    import tensorflow as tf

    path = os.fspath(path)
    if not os.path.isfile(os.path.join(path, MARKER)):
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


def load(path, runtime=None):
    """The SavedModel folder at `path`, opened in TensorFlow."""
    predict, shape, num_classes = saved_model_function(path)
    return Opened(predict, shape, "float32", num_classes, "tensorflow")
