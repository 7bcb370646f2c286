"""Each private Keras, TensorFlow or LiteRT API that ghostnet_tf.compat wraps still behaves as
the library relies on, with the installed versions."""

import keras
import numpy as np
import pytest
import tensorflow as tf

from ghostnet_tf import compat
from ghostnet_tf.layers import GhostModule
from tests import internals


def tiny_model():
    inputs = keras.Input((8, 8, 3))
    x = GhostModule(4, name="ghost")(inputs)
    x = keras.layers.GlobalAveragePooling2D()(x)
    return keras.Model(inputs, keras.layers.Dense(2, name="fc")(x))


def test_sublayers_lists_what_a_custom_layer_tracks():
    model = tiny_model()
    ghost = model.get_layer("ghost")
    assert [layer.name for layer in compat.sublayers(ghost)] == [
        "primary_conv", "primary_bn", "cheap_conv", "cheap_bn"]
    nested = {layer.name for layer in compat.sublayers(model, recursive=True)}
    assert {"ghost", "primary_bn", "fc"} <= nested


def test_ema_variables_are_the_optimizers_averages():
    model = tiny_model()
    model.compile(keras.optimizers.SGD(0.1, use_ema=True, ema_momentum=0.5), loss="mse")
    model.train_on_batch(np.ones((2, 8, 8, 3), "float32"), np.zeros((2, 2), "float32"))
    averages = internals.ema_variables(model.optimizer)
    assert len(averages) == len(model.trainable_variables)
    assert all(v.path.endswith("_average") for v in averages)


def test_multi_worker_patch_builds_the_model_and_is_undone():
    from keras.src.backend.tensorflow import trainer as keras_tf_trainer

    original = keras_tf_trainer._collective_all_reduce_multi_worker
    model = tiny_model()
    model.compile("sgd", loss="mse")
    batch = (np.ones((2, 8, 8, 3), "float32"), np.zeros((2, 2), "float32"))
    restore = compat.prepare_multi_worker_fit(model, tf.distribute.get_strategy(), batch)
    assert model.optimizer.built  # built from the one local batch, before fit
    assert keras_tf_trainer._collective_all_reduce_multi_worker(None) is False
    restore()
    assert keras_tf_trainer._collective_all_reduce_multi_worker is original


def _tflite(model, tmp_path):
    from ghostnet_tf.export import convert_tflite, export_saved_model
    export_saved_model(model, str(tmp_path / "sm"))
    return convert_tflite(str(tmp_path / "sm"), "float32")


def test_tflite_ops_and_delegated_nodes(tmp_path):
    from ai_edge_litert.interpreter import Interpreter

    interpreter = Interpreter(model_content=_tflite(tiny_model(), tmp_path), num_threads=1)
    ops = compat.tflite_ops(interpreter)
    assert [op["op_name"] for op in ops] == [
        "CONV_2D", "DEPTHWISE_CONV_2D", "CONCATENATION", "MEAN", "FULLY_CONNECTED"]
    assert all({"inputs", "outputs"} <= set(op) for op in ops)
    interpreter.allocate_tensors()
    names = internals.node_names(interpreter)
    assert names[:len(ops)] == [op["op_name"] for op in ops] and names.count("DELEGATE") == 1


@pytest.mark.parametrize("per_channel", [True, False])
def test_quantizing_the_calibrated_model_is_what_the_converter_makes(tmp_path, per_channel):
    model = tiny_model()
    model.export(str(tmp_path / "sm"), format="tf_saved_model", verbose=False)
    images = np.random.default_rng(0).uniform(0, 1, (16, 8, 8, 3)).astype("float32")

    def converter():
        converter = tf.lite.TFLiteConverter.from_saved_model(str(tmp_path / "sm"))
        converter.optimizations = [tf.lite.Optimize.DEFAULT]
        converter.representative_dataset = lambda: ([image[None]] for image in images)
        converter.target_spec.supported_ops = [tf.lite.OpsSet.TFLITE_BUILTINS_INT8]
        converter._experimental_disable_per_channel = not per_channel
        return converter

    reference = converter()
    reference.inference_input_type = reference.inference_output_type = tf.uint8
    expected = compat.tflite_model_object(reference.convert())
    calibrated = compat.calibrated_tflite(converter())
    ours = compat.tflite_model_object(compat.quantize_calibrated(
        calibrated, per_channel=per_channel, io_dtype="uint8"))

    # The same graph, tensors, quantization and weights; only the conversion metadata (its
    # options and hash) may differ.
    def graph(model):
        subgraph = model.subgraphs[0]
        tensors = [(t.name, t.type, list(t.shape), t.buffer) + (
            (list(t.quantization.scale), list(t.quantization.zeroPoint))
            if t.quantization is not None and t.quantization.scale is not None else ())
            for t in subgraph.tensors]
        ops = [(model.operatorCodes[op.opcodeIndex].builtinCode, list(op.inputs),
                list(op.outputs)) for op in subgraph.operators]
        metadata = {m.buffer for m in model.metadata}
        buffers = [None if i in metadata or b.data is None else bytes(b.data)
                   for i, b in enumerate(model.buffers)]
        return tensors, ops, list(subgraph.inputs), list(subgraph.outputs), buffers

    assert graph(ours) == graph(expected)
    kernel = next(t for t in ours.subgraphs[0].tensors if len(t.shape) == 4
                  and ours.buffers[t.buffer].data is not None)  # the first convolution's
    assert (len(kernel.quantization.scale) > 1) == per_channel


def test_setup_bounds_keras_and_tensorflow_to_the_tested_versions():
    import configparser
    import os

    from packaging.requirements import Requirement

    config = configparser.ConfigParser()
    config.read(os.path.join(os.path.dirname(os.path.dirname(__file__)), "setup.cfg"))
    requirements = {Requirement(line).name: Requirement(line) for line in
                    config["options"]["install_requires"].splitlines()
                    if line.strip() and not line.strip().startswith("#")}
    for name, version in (("keras", keras.__version__), ("tensorflow", tf.__version__)):
        specifier = requirements[name].specifier
        assert specifier.contains(version), (name, version, specifier)
        assert any(spec.operator == "<" for spec in specifier), f"{name} has no upper bound"


def test_functional_models_are_told_from_subclassed_ones():
    class Subclassed(keras.Model):
        def call(self, x):
            return x

    assert compat.is_functional(tiny_model())
    assert not compat.is_functional(Subclassed())
    assert not compat.is_functional(keras.Sequential([keras.layers.Dense(2)]))


def test_consumers_read_the_graph_forwards():
    model = tiny_model()
    taking = compat.consumers(model)
    first = taking[id(model.inputs[0])]
    assert [operation.name for operation in first] == ["ghost"]
    assert [op.name for op in taking[id(model.get_layer("ghost").output)]] == [
        model.layers[2].name]
    assert id(model.outputs[0]) not in taking  # nothing takes the output


def test_calls_are_recorded_within_the_block_only():
    model = tiny_model()
    ghost = model.get_layer("ghost")
    seen = []
    with compat.calls_recorded([ghost], lambda layer, args, out: seen.append(
            (layer.name, tuple(args[0].shape), tuple(out.shape)))):
        model(np.ones((1, 8, 8, 3), "float32"))
    model(np.ones((1, 8, 8, 3), "float32"))
    assert seen == [("ghost", (1, 8, 8, 3), (1, 8, 8, 4))]
    assert "call" not in vars(ghost)  # the shadowing attribute is gone


def test_weights_file_dense_units(tmp_path):
    model = tiny_model()
    model.save_weights(tmp_path / "m.weights.h5")
    assert compat.weights_file_dense_units(tmp_path / "m.weights.h5") == 2
    inputs = keras.Input((4,))
    keras.Model(inputs, keras.layers.ReLU()(inputs)).save_weights(tmp_path / "none.weights.h5")
    with pytest.raises(KeyError):
        compat.weights_file_dense_units(tmp_path / "none.weights.h5")
    (tmp_path / "text.weights.h5").write_text("not hdf5")
    with pytest.raises(OSError):
        compat.weights_file_dense_units(tmp_path / "text.weights.h5")


def test_tflite_model_objects_round_trip(tmp_path):
    content = _tflite(tiny_model(), tmp_path)
    model = compat.tflite_model_object(content)
    graph = model.subgraphs[0]
    assert model.subgraphs and graph.tensors[graph.inputs[0]].type == \
        compat.tflite_schema().TensorType.FLOAT32
    again = compat.tflite_model_object(compat.tflite_model_bytes(model))
    assert [t.shape.tolist() for t in again.subgraphs[0].tensors] == \
        [t.shape.tolist() for t in graph.tensors]
