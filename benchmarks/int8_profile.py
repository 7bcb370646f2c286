"""Per-op profile of float32 against full-int8 `.tflite` files in LiteRT (XNNPACK).

    taskset -c 0 python benchmarks/int8_profile.py [--runs 200] [--rounds 3] [--threads 1]

Why int8 does or does not pay, op type by op type. The Python LiteRT interpreter has no op
profiler (the C++ benchmark tool's --enable_op_profiling is not in the wheel), so each op of
a graph is cut out into a model of its own (same tensors, shapes, weights and quantization,
its activations as inputs) and timed alone; the sum of one graph's ops, less the invoke
overhead of each (measured on a one-element model), is printed beside the whole graph's
time as the check that the cut-out ops add up. Models: GhostNet 1.0x and GhostNetV3 1.0x
(as export.py writes them; V3 also without the dfc_pool_as_depthwise rewrite),
MobileNetV3-Large 1.0 (keras.applications) and a plain stack of 3x3 convolutions (where
int8 is known to pay, for scale). Weights and calibration images
are random: latency does not depend on their values. Every model and op is timed in each
round, ten calls at a time in turn (timing.timed_interleaved); medians per round,
the median of the rounds reported, and each round's whole-graph int8 / float32 ratio
printed.
"""
import argparse
import collections
import os
import statistics
import sys
import tempfile

import numpy as np

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

KINDS = ("float32", "int8")


def conv_stack_files(kinds, work_dir):
    """A plain convolution stack (VGG-like, 3x3 + ReLU, 64 to 256 channels, 56x56 in)."""
    import keras
    from tflite_latency import calibration_images, SIZE

    from ghostnet_tf.export import convert_tflite, export_saved_model

    inputs = keras.Input((SIZE, SIZE, 3))
    x = keras.layers.AveragePooling2D(4)(inputs)
    for filters in (64, 64, 128, 128, 256):
        x = keras.layers.Conv2D(filters, 3, padding="same", activation="relu")(x)
        if filters != 64:
            x = keras.layers.MaxPooling2D()(x)
    outputs = keras.layers.Dense(1000)(keras.layers.GlobalAveragePooling2D()(x))
    model = keras.Model(inputs, outputs, name="conv_stack")
    saved_model = os.path.join(work_dir, "conv_stack")
    export_saved_model(model, saved_model)
    return {kind: convert_tflite(saved_model, kind, calibration_images()) for kind in kinds}


def single_op_models(content):
    """[(op name, bytes of a model that runs only that op)] of subgraph 0, in order. Each
    keeps only its own op's constant buffers (a whole model's weights in each of some 2,000
    cut-out models do not fit in memory)."""
    from ai_edge_litert import schema_py_generated as schema
    from ai_edge_litert.tools import flatbuffer_utils

    model = flatbuffer_utils.read_model_from_bytearray(content)
    graph = model.subgraphs[0]
    operators, buffers = graph.operators, model.buffers
    tensor_buffers = [tensor.buffer for tensor in graph.tensors]
    model.signatureDefs, model.metadata = [], []
    models = []
    for operator in operators:
        inputs = [index for index in operator.inputs if index >= 0]
        for tensor in graph.tensors:
            tensor.buffer = 0
        model.buffers = [schema.BufferT()]
        for index in inputs:
            if _has_data(buffers[tensor_buffers[index]]):
                model.buffers.append(buffers[tensor_buffers[index]])
                graph.tensors[index].buffer = len(model.buffers) - 1
        graph.operators = [operator]
        graph.inputs = [index for index in inputs if graph.tensors[index].buffer == 0]
        graph.outputs = list(operator.outputs)
        name = flatbuffer_utils.opcode_to_name(model, operator.opcodeIndex)
        models.append((name, bytes(flatbuffer_utils.convert_object_to_bytearray(model))))
    return models


def _has_data(buffer):
    return buffer.data is not None and len(buffer.data) > 0


def activations(content):
    """{tensor index: value} of every tensor of one run of the whole graph on random input:
    the cut-out ops' inputs (shape tensors included) get the values they have in place."""
    from ai_edge_litert.interpreter import Interpreter

    interpreter = Interpreter(model_content=content, experimental_preserve_all_tensors=True)
    interpreter.allocate_tensors()
    _set_random_inputs(interpreter)
    interpreter.invoke()
    values = {}
    for detail in interpreter.get_tensor_details():
        try:
            values[detail["index"]] = interpreter.get_tensor(detail["index"])
        except ValueError:  # a tensor without data (an optional input)
            pass
    return values


def _set_random_inputs(interpreter):
    generator = np.random.default_rng(0)
    for detail in interpreter.get_input_details():
        value = generator.uniform(0, 255, detail["shape"])
        interpreter.set_tensor(detail["index"], value.astype(detail["dtype"]))


def runner(content, threads, values=None):
    """The interpreter's invoke, with its inputs set once (from `values` where given)."""
    from ai_edge_litert.interpreter import Interpreter

    interpreter = Interpreter(model_content=content, num_threads=threads)
    interpreter.allocate_tensors()
    if values is None:
        _set_random_inputs(interpreter)
    else:
        for detail in interpreter.get_input_details():
            interpreter.set_tensor(detail["index"], values[detail["index"]])
    return interpreter.invoke


def overhead_model():
    """A float32 model of one ADD on one element: what an invoke costs doing nothing."""
    import tensorflow as tf

    function = tf.function(lambda x: x + 1.0, input_signature=[tf.TensorSpec([1], tf.float32)])
    converter = tf.lite.TFLiteConverter.from_concrete_functions(
        [function.get_concrete_function()], function)
    return converter.convert()


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--runs", type=int, default=200, help="timed calls per op and round")
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--files-dir", help="keep the converted files here, and time those "
                                            "already there instead of converting again")
    args = parser.parse_args()

    from timing import timed_interleaved
    from tflite_latency import cpu_description, ghostnet_files, kept_files, mobilenet_files

    from ghostnet_tf.export_rewrites import REWRITES

    with tempfile.TemporaryDirectory() as work_dir:
        builders = {
            "GhostNet 1.0x": lambda: ghostnet_files("ghostnet_100", KINDS),
            "GhostNetV3 1.0x (folded)": lambda: ghostnet_files("ghostnetv3_100", KINDS),
            "GhostNetV3 1.0x, DFC pool kept": lambda: ghostnet_files(
                "ghostnetv3_100", KINDS, rewrites=[name for name in REWRITES
                                                   if name != "dfc_pool_as_depthwise"]),
            "MobileNetV3-Large 1.0": lambda: mobilenet_files("MobileNetV3-Large 1.0", KINDS,
                                                             work_dir),
            "3x3 convolution stack": lambda: conv_stack_files(KINDS, work_dir)}
        files = {name: kept_files(name, build, KINDS, args.files_dir)
                 for name, build in builders.items()}
    wholes = {(name, kind): runner(content, args.threads)
              for name, contents in files.items() for kind, content in contents.items()}
    ops = {}
    for name, contents in files.items():
        for kind, content in contents.items():
            values = activations(content)
            ops[name, kind] = [(op, runner(model, args.threads, values))
                               for op, model in single_op_models(content)]
    overhead = runner(overhead_model(), args.threads)

    runners = {"overhead": overhead, **wholes,
               **{(key, index): run for key, runs in ops.items()
                  for index, (_, run) in enumerate(runs)}}
    rounds = []
    for _ in range(args.rounds):
        times = {key: 1000 * statistics.median(values)
                 for key, values in timed_interleaved(runners, args.runs).items()}
        rounds.append({"overhead": times["overhead"],
                       **{key: times[key] for key in wholes},
                       **{(key, "ops"): [(op, times[key, index])
                                         for index, (op, _) in enumerate(ops[key])]
                          for key in ops}})

    print(f"LiteRT (ai_edge_litert, XNNPACK), 224x224, batch 1, {args.threads} thread(s); "
          f"median of {args.runs} calls per round, median of {args.rounds} rounds; "
          f"{cpu_description()}\n")
    overhead_ms = statistics.median(r["overhead"] for r in rounds)
    print(f"invoke overhead (one-element ADD): {1000 * overhead_ms:.1f} us per call\n")
    print("| model | float32 (ms) | int8 (ms) | int8 / float32, each round | ops float32 | "
          "ops int8 | sum of cut-out ops float32 (ms) | same, int8 (ms) |")
    print("| --- | ---: | ---: | --- | ---: | ---: | ---: | ---: |")
    per_type = {}
    for name in files:
        cells = []
        for kind in KINDS:
            op_ms = collections.defaultdict(float)
            count = collections.Counter()
            for index, (op, _) in enumerate(ops[name, kind]):
                value = statistics.median(r[(name, kind), "ops"][index][1] for r in rounds)
                op_ms[op] += max(value - overhead_ms, 0.0)
                count[op] += 1
            per_type[name, kind] = (op_ms, count)
            cells.append((statistics.median(r[name, kind] for r in rounds),
                          sum(count.values()), sum(op_ms.values())))
        ratios = ", ".join(f"{r[name, 'int8'] / r[name, 'float32']:.2f}" for r in rounds)
        print(f"| {name} | {cells[0][0]:.2f} | {cells[1][0]:.2f} | {ratios} | {cells[0][1]} | "
              f"{cells[1][1]} | {cells[0][2]:.2f} | {cells[1][2]:.2f} |")

    for name in files:
        (fp_ms, fp_count), (q_ms, q_count) = per_type[name, "float32"], per_type[name, "int8"]
        print(f"\n{name}, by op type (cut-out ops, overhead removed):")
        print("| op | count float32 | count int8 | float32 (ms) | int8 (ms) | int8 / float32 |")
        print("| --- | ---: | ---: | ---: | ---: | ---: |")
        for op in sorted(set(fp_ms) | set(q_ms), key=lambda o: -(fp_ms[o] + q_ms[o])):
            ratio = f"{q_ms[op] / fp_ms[op]:.2f}" if fp_ms[op] > 0 and q_ms[op] > 0 else "-"
            print(f"| {op} | {fp_count[op]} | {q_count[op]} | {fp_ms[op]:.3f} | "
                  f"{q_ms[op]:.3f} | {ratio} |")
    return 0


if __name__ == "__main__":
    sys.exit(main())
