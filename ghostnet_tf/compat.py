"""Every use of a private Keras, TensorFlow or LiteRT API, in one place.

The library needs a few things that these packages do not expose publicly; each is wrapped
here, with what it relies on, so that an upgrade breaks in one file, and
tests/test_compat.py checks each against the installed versions. setup.cfg bounds Keras and
TensorFlow to the range these were tested with.
"""
import contextlib

import keras


# ---------------------------------------------------------------------------- Keras
def sublayers(layer, recursive=False):
    """The layers tracked inside `layer` (a model or a layer with sublayers), in tracking
    order; Keras has no public way to list the sublayers of a custom layer."""
    return list(layer._flatten_layers(include_self=False, recursive=recursive))


def is_functional(model):
    """Whether `model` is a functional `keras.Model` (built from `keras.Input`), not a
    subclassed one; Keras exports no class to test against (`keras.Sequential` is one)."""
    from keras.src.models.functional import Functional
    return type(model) is Functional


def consumers(model):
    """{id(tensor): [the operations of the functional `model` that take it]}: the graph
    read forwards; Keras records only each operation's inputs (its inbound nodes)."""
    found = {}
    for operation in model.operations:
        for node in operation._inbound_nodes:
            for tensor in node.input_tensors:
                found.setdefault(id(tensor), []).append(operation)
    return found


@contextlib.contextmanager
def calls_recorded(layers, record):
    """Within the block, each call of a layer of `layers` also runs `record(layer, args,
    outputs)`. Keras' `Layer.__call__` runs `self.call`, which an instance attribute
    shadows; Keras has no public hook on a layer's calls."""
    def recording(layer, call):
        def call_and_record(*args, **kwargs):
            outputs = call(*args, **kwargs)
            record(layer, args, outputs)
            return outputs
        return call_and_record

    for layer in layers:
        object.__setattr__(layer, "call", recording(layer, layer.call))
    try:
        yield
    finally:
        for layer in layers:
            object.__delattr__(layer, "call")


def weights_file_dense_units(path):
    """The output units of the one `Dense` layer of the model whose `.weights.h5` file is at
    `path`; KeyError when it has none, OSError when it is no HDF5 file. Keras' weights file
    names each layer's group by its class ("dense") and keeps its kernel as variable "0";
    Keras reads it only whole, into a built model."""
    import h5py

    with h5py.File(path, "r") as file:
        return int(file["layers"]["dense"]["vars"]["0"].shape[1])


def prepare_multi_worker_fit(model, strategy, data_batch):
    """Work around two bugs of Keras 3's fit under MultiWorkerMirroredStrategy
    (tensorflow/tensorflow#72388, closed unfixed; its only advice is to go back to Keras 2).

    1. fit's first step averages a distributed batch with `strategy.reduce`, which this
       strategy cannot do eagerly, only to build the model, metrics and optimizer
       symbolically: build them here from one local batch, and let fit (run inside the
       strategy's scope, which still distributes it) skip that step.
    2. the logs of each step are reduced with `strategy.reduce("MEAN", v, axis=0)`, which
       fails on scalars. The logs are metric results, whose variables are synchronized on
       read across all workers, so the local reduction Keras uses for one machine gives the
       same global values: use it. (It would make `predict` local to each worker; the
       trainer never calls `predict`.)

    Returns a function that undoes the second change (the first belongs to `model` only).
    """
    from keras.src.backend.tensorflow import trainer as keras_tf_trainer

    with strategy.scope():
        model._symbolic_build(data_batch=data_batch)
    model._distribute_strategy = None
    original = keras_tf_trainer._collective_all_reduce_multi_worker
    keras_tf_trainer._collective_all_reduce_multi_worker = lambda strategy: False

    def restore():
        keras_tf_trainer._collective_all_reduce_multi_worker = original
    return restore


# ---------------------------------------------------------------------------- TensorFlow
def tflite_schema():
    """TensorFlow's generated Python classes of the TFLite flatbuffer schema (TensorType,
    BufferT, MetadataT, ...); LiteRT's own package does not ship them."""
    from tensorflow.lite.python import schema_py_generated
    return schema_py_generated


def tflite_model_object(content):
    """The `.tflite` bytes `content` as a mutable schema object (`ModelT`)."""
    from tensorflow.lite.tools import flatbuffer_utils
    return flatbuffer_utils.convert_bytearray_to_object(bytearray(content))


def tflite_model_bytes(model):
    """The `.tflite` bytes of a schema object made by `tflite_model_object`."""
    from tensorflow.lite.tools import flatbuffer_utils
    return bytes(flatbuffer_utils.convert_object_to_bytearray(model))


def disable_per_channel_quantization(converter):
    """One weight scale per tensor in a full-int8 conversion (the converter's default is one
    per output channel); TFLiteConverter has only a private switch for it."""
    converter._experimental_disable_per_channel = True


# ---------------------------------------------------------------------------- LiteRT
def tflite_ops(interpreter):
    """The ops of a LiteRT interpreter's graph, in execution order, each a dict with
    "op_name", "inputs" and "outputs" (tensor indices); the public API lists tensors only."""
    return interpreter._get_ops_details()
