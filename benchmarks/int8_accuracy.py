"""Int8 against float32 test accuracy of trained runs: the full-int8 `.tflite`, the int8 ONNX
(QDQ) and the selective `.tflite` that keeps the int8 layer report's worst ops in float.

    python benchmarks/int8_accuracy.py --runs checkpoints/fashion_mnist_ghostnet_100_seed0 \
        checkpoints/fashion_mnist_ghostnet_100_seed1 --data-dir /usr/share/datasets/fashion-mnist

Each run's best.keras is exported as export.py does (1000 calibration images of the train
split, every class) into <run>/int8_export/, and again with `--float-ops` for the report's
worst `--worst` ops into <run>/int8_selective/; every file is evaluated on the whole test split
as eval.py does. Array datasets are resized to the model's input (`--resize-arrays`), as the
Fashion-MNIST recipes of the ImageNet GhostNets train them. The table gives each run and the
mean over runs, with the spread (max - min) of the int8 loss.

    taskset -c 0 python benchmarks/int8_accuracy.py --latency --runs RUN...

times the float32, int8 and selective `.tflite` files written before in LiteRT (XNNPACK, one
thread, batch 1, at the runs' input size), every file in turn in each round, and prints the
min and median latency and each file's ratio to float32 in every round. With `--int16x8` it
also converts each run's best.keras to LiteRT's 16x8 mode (int16 activations, int8 weights;
ops without a 16x8 kernel stay float) and times that too: the other remedy for an int8 loss,
which the library does not export because of this figure.
"""
import argparse
import os
import statistics
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

from ghostnet_tf.data.source import DataSource  # noqa: E402
from ghostnet_tf.evaluation import evaluate  # noqa: E402  (what eval.py runs)
from ghostnet_tf.export import ExportOptions, export_model_file  # noqa: E402
from timing import timed_interleaved  # noqa: E402
from tflite_latency import cpu_description, litert_runner  # noqa: E402

FILES = ("float32", "int8", "onnx_int8")


def measure(run, source, worst):
    """{file kind: test top-1} of one run, with "selective" and the float ops it keeps."""
    model = os.path.join(run, "best.keras")
    report, folder = export_model_file(model, os.path.join(run, "int8_export"), FILES,
                                       source=source, replace=True)
    kept = [layer["tensor"] for layer in report["exports"]["int8"]["layers"][:worst]]
    selective, _ = export_model_file(model, os.path.join(run, "int8_selective"), ["int8"],
                                     source=source, replace=True,
                                     options=ExportOptions(float_ops=kept))
    paths = {kind: report["exports"][kind]["path"] for kind in FILES}
    paths["selective"] = selective["exports"]["int8"]["path"]
    top1 = {}
    for kind, path in paths.items():
        result, _, _ = evaluate(path, source, output=path + ".eval.json")
        top1[kind] = result.top1
    worst_layer = report["exports"]["int8"]["layers"][0]
    return top1, worst_layer


def tflite_files(run):
    """{kind: path} of a run's `.tflite` files written by `measure`."""
    return {"float32": os.path.join(run, "int8_export", "model_float32.tflite"),
            "int8": os.path.join(run, "int8_export", "model_int8.tflite"),
            "selective": os.path.join(run, "int8_selective", "model_int8.tflite")}


def int16x8_file(run, calibration=20):
    """The 16x8 `.tflite` of a run's best.keras (export's graph and rewrites), calibrated on
    random images: latency does not depend on them."""
    import keras
    import numpy as np
    import tensorflow as tf

    from ghostnet_tf.export import inference_copy, tflite_saved_model
    from ghostnet_tf.export.litert import saved_model_converter

    model = inference_copy(keras.saving.load_model(os.path.join(run, "best.keras")))
    # The converted graph takes RGB, also where the model takes grayscale.
    images = np.random.default_rng(0).uniform(
        0, 255, (calibration, *model.input_shape[1:3], 3)).astype(np.float32)
    with tflite_saved_model(model) as source:
        converter = saved_model_converter(source)
        converter.optimizations = [tf.lite.Optimize.DEFAULT]
        converter.representative_dataset = lambda: ([image[None]] for image in images)
        converter.target_spec.supported_ops = [
            tf.lite.OpsSet.EXPERIMENTAL_TFLITE_BUILTINS_ACTIVATIONS_INT16_WEIGHTS_INT8,
            tf.lite.OpsSet.TFLITE_BUILTINS]
        return converter.convert()


def latency(runs, count, rounds, int16x8):
    """Prints min / median ms of every run's float32, int8 and selective file (and 16x8 file
    with `int16x8`), timed in turn, and their ratios to float32 in each round."""
    runners = {}
    for run in runs:
        name = os.path.basename(os.path.normpath(run))
        for kind, path in tflite_files(run).items():
            if not os.path.exists(path):
                sys.exit(f"--latency: {path} is missing; run without --latency first")
            with open(path, "rb") as file:
                runners[(name, kind)] = litert_runner(file.read(), threads=1)
        if int16x8:
            runners[(name, "int16x8")] = litert_runner(int16x8_file(run), threads=1)
    medians, times = [], {key: [] for key in runners}
    for _ in range(rounds):
        values = timed_interleaved(runners, count)
        medians.append({key: statistics.median(v) for key, v in values.items()})
        for key, v in values.items():
            times[key].extend(v)
    print(f"\nLiteRT (XNNPACK), 1 thread, batch 1; {count} runs x {rounds} rounds per file; "
          f"ms; {cpu_description()}")
    print("| run | file | min | median | ratio to float32 in each round |")
    print("| --- | --- | ---: | ---: | --- |")
    for (name, kind), values in times.items():
        ratios = ", ".join(f"{m[(name, kind)] / m[(name, 'float32')]:.2f}" for m in medians)
        print(f"| {name} | {kind} | {1000 * min(values):.2f} | "
              f"{1000 * statistics.median(values):.2f} | {ratios} |")


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--runs", nargs="+", required=True, help="run folders (best.keras)")
    parser.add_argument("--dataset", default="fashion_mnist")
    parser.add_argument("--data-dir")
    parser.add_argument("--worst", type=int, default=10,
                        help="ops the selective file keeps in float (default 10)")
    parser.add_argument("--latency", action="store_true",
                        help="time the files written before instead of measuring accuracy")
    parser.add_argument("--count", type=int, default=200, help="timed runs per round")
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--int16x8", action="store_true",
                        help="with --latency: time LiteRT's 16x8 mode of each run too")
    args = parser.parse_args()
    if args.latency:
        latency(args.runs, args.count, args.rounds, args.int16x8)
        return 0

    source = DataSource(args.dataset, args.data_dir, resize_arrays=True)
    rows = []
    for run in args.runs:
        top1, worst_layer = measure(run, source, args.worst)
        rows.append((os.path.basename(os.path.normpath(run)), top1))
        print(f"{run}: worst op {worst_layer['op']} {worst_layer['sqnr_db']} dB "
              f"{worst_layer['tensor']}", flush=True)
    print(f"\n| run | float32 | int8 | int8 loss | ONNX int8 | ONNX int8 loss | "
          f"int8, worst {args.worst} ops float | its loss |")
    print("| --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: |")

    def losses(top1):
        return [100 * (top1[kind] - top1["float32"]) for kind in ("int8", "onnx_int8",
                                                                  "selective")]

    for name, top1 in rows:
        loss = losses(top1)
        print(f"| {name} | {top1['float32']:.2%} | {top1['int8']:.2%} | {loss[0]:+.2f} | "
              f"{top1['onnx_int8']:.2%} | {loss[1]:+.2f} | {top1['selective']:.2%} | "
              f"{loss[2]:+.2f} |")
    if len(rows) > 1:
        mean = {kind: sum(top1[kind] for _, top1 in rows) / len(rows) for kind in rows[0][1]}
        spread = [max(values) - min(values)
                  for values in zip(*(losses(top1) for _, top1 in rows))]
        loss = losses(mean)
        print(f"| mean of {len(rows)} | {mean['float32']:.2%} | {mean['int8']:.2%} | "
              f"{loss[0]:+.2f} (spread {spread[0]:.2f}) | {mean['onnx_int8']:.2%} | "
              f"{loss[1]:+.2f} (spread {spread[1]:.2f}) | {mean['selective']:.2%} | "
              f"{loss[2]:+.2f} (spread {spread[2]:.2f}) |")
    return 0


if __name__ == "__main__":
    sys.exit(main())
