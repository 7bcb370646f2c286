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


def calibrated_tflite(converter):
    """The float `.tflite` that the full-int8 `converter` calibrates, with each tensor's
    recorded range, before it is quantized: the private switch that TensorFlow's
    quantization debugger also uses. One calibration then serves the int8 file, the
    selective file and the layer report (`quantize_calibrated`)."""
    converter._experimental_calibrate_only = True
    return converter.convert()


def quantize_calibrated(calibrated, per_channel=True, io_dtype="float32",
                        numeric_verify=False, float_op_types=None, float_nodes=None):
    """The int8 `.tflite` of a `calibrated_tflite`, made by the steps that the converter's
    `convert()` takes after calibrating (its MLIR quantizer, then the deduplication of
    read-only buffers), so that it equals the converter's file apart from the conversion
    metadata; `tests/test_compat.py` checks it. `io_dtype` is the input's and output's type
    ("float32", "int8" or "uint8"); `numeric_verify` adds the debugger's comparison ops;
    `float_op_types` and `float_nodes` stay in float."""
    import tensorflow as tf
    from tensorflow.lite.python import convert, lite

    dtype = getattr(tf, io_dtype)
    content = convert.mlir_quantize(
        calibrated, disable_per_channel=not per_channel, input_data_type=dtype,
        output_data_type=dtype, enable_numeric_verify=numeric_verify,
        denylisted_ops=float_op_types, denylisted_nodes=float_nodes)
    return lite._deduplicate_readonly_buffers(content)


# ---------------------------------------------------------------------------- LiteRT
def tflite_ops(interpreter):
    """The ops of a LiteRT interpreter's graph, in execution order, each a dict with
    "op_name", "inputs" and "outputs" (tensor indices); the public API lists tensors only."""
    return interpreter._get_ops_details()
