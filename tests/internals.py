"""Private Keras and LiteRT state that the tests look at (the library itself does not use
these; its own private-API uses are in ghostnet_tf/compat.py)."""
import numpy as np

from ghostnet_tf.tflite_metadata import METADATA_NAME


def ema_variables(optimizer):
    """The optimizer's exponential moving averages of the model variables (use_ema=True)."""
    return list(optimizer._model_variables_moving_average)


def node_names(interpreter):
    """Names of the nodes of a LiteRT interpreter's graph: its ops and, after
    `allocate_tensors()`, one "DELEGATE" node for each piece of the graph that XNNPACK took
    (a graph XNNPACK runs whole has exactly one)."""
    native = interpreter._interpreter
    return [native.NodeName(index) for index in range(native.NumNodes())]


def read_metadata(model_content):
    """The metadata flatbuffer (bytes) of a `.tflite`, or None."""
    from tensorflow.lite.tools import flatbuffer_utils

    model = flatbuffer_utils.convert_bytearray_to_object(bytearray(model_content))
    for entry in model.metadata or []:
        if entry.name.decode() == METADATA_NAME:
            return np.asarray(model.buffers[entry.buffer].data, dtype=np.uint8).tobytes()
    return None
