"""GhostNetV2's DFC upsampling in LiteRT: the library's form against a candidate, converted
(float32 .tflite, the export's rewrites), checked for equal outputs, counted (ops, XNNPACK
partitions) and timed interleaved on one thread.

    taskset -c 0 python benchmarks/upsampling_forms.py --rounds 3 --runs 100

"reshapes": each axis repeated by reshapes around a concatenation (ops XNNPACK takes);
"resize": one RESIZE_NEAREST_NEIGHBOR for the exact 2x (every nearest rule, Keras' half-pixel
one and PyTorch's floor(i * in / out), picks source row i // 2 there), the first row or
column put in front for odd sizes. XNNPACK does not take RESIZE_NEAREST_NEIGHBOR, so each one
ends a delegated partition.
"""
import argparse
import os
import statistics
import sys

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")

import keras  # noqa: E402
import numpy as np  # noqa: E402
from keras import ops  # noqa: E402
from timing import timed_interleaved  # noqa: E402

import ghostnet_tf.layers as ghost_layers  # noqa: E402
from ghostnet_tf.export import tflite_files, tflite_op_counts  # noqa: E402
from ghostnet_tf.models import registry  # noqa: E402

LIBRARY_FORM = ghost_layers.upsample_nearest_like_torch


def _repeat_twice(x, axis):
    shape = [-1] + list(x.shape[1:])
    pair = ops.reshape(x, shape[:axis + 1] + [1] + shape[axis + 1:])
    shape[axis] *= 2
    return ops.reshape(ops.concatenate([pair, pair], axis=axis + 1), shape)


def by_reshapes(x, height, width):
    for axis, size in ((1, height), (2, width)):
        doubled = _repeat_twice(x, axis)
        if size == 2 * x.shape[axis] + 1:
            first = x[:, :1] if axis == 1 else x[:, :, :1]
            doubled = ops.concatenate([first, doubled], axis=axis)
        x = doubled
    return x


def by_resize(x, height, width):
    in_height, in_width = x.shape[1:3]
    y = ops.image.resize(x, (2 * in_height, 2 * in_width), interpolation="nearest")
    if height > 2 * in_height:
        y = ops.concatenate([y[:, :1], y], axis=1)
    if width > 2 * in_width:
        y = ops.concatenate([y[:, :, :1], y], axis=2)
    return y


FORMS = {"reshapes": by_reshapes, "resize": by_resize}


def converted(name, form, size):
    ghost_layers.upsample_nearest_like_torch = FORMS[form]
    try:
        keras.utils.set_random_seed(0)
        model = registry.get_model(name, input_shape=(size, size, 3))
        return tflite_files(model, ["float32"])["float32"]
    finally:
        ghost_layers.upsample_nearest_like_torch = LIBRARY_FORM


def main():
    from ai_edge_litert.interpreter import Interpreter

    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", default="ghostnetv2_100")
    parser.add_argument("--size", type=int, default=224)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--runs", type=int, default=100)
    args = parser.parse_args()
    files = {form: converted(args.model, form, args.size) for form in FORMS}
    image = np.random.default_rng(0).uniform(0, 255, (1, args.size, args.size, 3))
    interpreters, outputs = {}, {}
    for form, content in files.items():
        interpreter = Interpreter(model_content=content, num_threads=1)
        interpreter.allocate_tensors()
        interpreter.set_tensor(interpreter.get_input_details()[0]["index"],
                               image.astype(np.float32))
        interpreter.invoke()
        outputs[form] = interpreter.get_tensor(interpreter.get_output_details()[0]["index"])
        interpreters[form] = interpreter
    difference = float(np.abs(outputs["reshapes"] - outputs["resize"]).max())
    print(f"{args.model} at {args.size}: max |probability difference| {difference:.1e}")
    print("| form | ops | RESHAPE | CONCATENATION | RESIZE_NEAREST_NEIGHBOR | XNNPACK partitions |")
    print("| --- | ---: | ---: | ---: | ---: | ---: |")
    for form, content in files.items():
        counts = tflite_op_counts(content)
        partitions = [op["op_name"] for op in interpreters[form]._get_ops_details()].count(
            "DELEGATE")
        print(f"| {form} | {sum(counts.values())} | {counts.get('RESHAPE', 0)} | "
              f"{counts.get('CONCATENATION', 0)} | {counts.get('RESIZE_NEAREST_NEIGHBOR', 0)} | "
              f"{partitions} |")
    print("\n| round | reshapes min / median ms | resize min / median ms | resize / reshapes "
          "(median) |")
    print("| --- | ---: | ---: | ---: |")
    for round_index in range(args.rounds):
        times = {form: [1e3 * seconds for seconds in values] for form, values in
                 timed_interleaved({form: interpreter.invoke for form, interpreter
                                    in interpreters.items()}, args.runs, chunk=1).items()}
        medians = {form: statistics.median(values) for form, values in times.items()}
        print(f"| {round_index + 1} | {min(times['reshapes']):.2f} / {medians['reshapes']:.2f} "
              f"| {min(times['resize']):.2f} / {medians['resize']:.2f} | "
              f"{medians['resize'] / medians['reshapes']:.3f} |")


if __name__ == "__main__":
    main()
