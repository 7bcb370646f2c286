"""The portable Keras target: a `.keras` file of Keras' built-in layers only
(`ghostnet_tf.portable`), which `keras.saving.load_model` opens where this library is not
installed, on the TensorFlow and JAX backends."""
import os

import numpy as np

from ghostnet_tf.atomic import write_atomically
from ghostnet_tf.checks import ArgumentError
from ghostnet_tf.export.common import Opened

# Its own ending, so that a loader tells it from the `.keras` files of training runs (which
# need the library); any `.keras` loader opens it too.
SUFFIX = "_portable.keras"


def steps(formats):
    """How many steps writing `formats` takes: one."""
    return len(formats)


def write(model, folder, formats, conversion, step):
    """Write the portable `.keras` file of `model` (the inference copy) into `folder`:
    {name: entry}."""
    from ghostnet_tf.portable import portable

    (keras_file,) = formats
    step(f"writing {keras_file.file}")
    graph = portable(model)
    path = os.path.join(folder, keras_file.file)
    write_atomically(path, graph.save)
    return {keras_file.name: {"layer_count": len(graph.layers), "bytes": os.path.getsize(path)}}


def load(path, runtime=None):
    """The portable `.keras` file at `path`, opened in Keras."""
    import keras

    path = os.fspath(path)
    if not os.path.isfile(path):
        raise ArgumentError("model", f"{path}: no such file.")
    try:
        model = keras.saving.load_model(path)
    except (ValueError, OSError) as error:
        raise ArgumentError("model", f"{path} is not a readable .keras file: {error}") from None

    def predict(images):
        return np.asarray(model.predict(np.asarray(images, np.float32), verbose=0))

    return Opened(predict, tuple(model.input_shape[1:]), "float32",
                  int(model.output_shape[-1]), "keras")
