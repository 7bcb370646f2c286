"""Median LiteRT (XNNPACK) latency of GhostNet and MobileNetV3 at 224x224, one image.

    python benchmarks/tflite_latency.py [--threads 1 4] [--runs 100]

Converts GhostNet 0.5/1.0/1.3 (ours) and MobileNetV3-Large 1.0/0.75 and MobileNetV3-Small
(keras.applications) to float32 and full-int8 `.tflite` with the library's export path, runs
each through `ai_edge_litert`, and prints the median latency, the ratios the paper's claim
rests on (GhostNet-1.0 against MobileNetV3-Large-0.75; int8 against float32), and the op
counts of each converted graph. Weights are random and int8 is calibrated on random images:
latency does not depend on the values. All models are measured in the same run, one after
the other, so the ratios hold on a noisy machine where the absolute times do not.
"""
import argparse
import os
import platform
import statistics
import sys
import tempfile
import time

import numpy as np

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

GHOSTNETS = {"GhostNet 0.5x": 0.5, "GhostNet 1.0x": 1.0, "GhostNet 1.3x": 1.3}
MOBILENETS = {"MobileNetV3-Large 1.0": ("Large", 1.0), "MobileNetV3-Large 0.75": ("Large", 0.75),
              "MobileNetV3-Small 1.0": ("Small", 1.0)}
REFERENCE = "MobileNetV3-Large 0.75"


def build(name):
    import keras

    from ghostnet_tf.models import GhostNet
    if name in GHOSTNETS:
        return GhostNet(width=GHOSTNETS[name], weights=None)
    size, alpha = MOBILENETS[name]
    constructor = getattr(keras.applications, f"MobileNetV3{size}")
    return constructor(input_shape=(224, 224, 3), alpha=alpha, weights=None)


def convert(name, kinds, work_dir):
    """{kind: .tflite bytes} of the model `name`."""
    from ghostnet_tf.export import convert_tflite, export_saved_model

    model = build(name)
    saved_model = os.path.join(work_dir, name.replace(" ", "_"))
    export_saved_model(model, saved_model)
    calibration = np.random.default_rng(0).uniform(0, 255, (8, 224, 224, 3)).astype("float32")
    return {kind: convert_tflite(saved_model, kind, calibration) for kind in kinds}


def xnnpack_partitions(content):
    """How many parts of the graph XNNPACK runs; ops it does not take run on TFLite's own
    kernels between them, and each switch costs time."""
    from ai_edge_litert.interpreter import Interpreter

    from ghostnet_tf.compat import node_names

    interpreter = Interpreter(model_content=content, num_threads=1)
    interpreter.allocate_tensors()
    return node_names(interpreter).count("DELEGATE")


def median_latency_ms(content, threads, runs, warmup=10):
    from ai_edge_litert.interpreter import Interpreter

    interpreter = Interpreter(model_content=content, num_threads=threads)
    interpreter.allocate_tensors()
    detail = interpreter.get_input_details()[0]
    image = np.random.default_rng(0).integers(0, 255, detail["shape"]).astype(detail["dtype"])
    interpreter.set_tensor(detail["index"], image)
    for _ in range(warmup):
        interpreter.invoke()
    times = []
    for _ in range(runs):
        start = time.perf_counter()
        interpreter.invoke()
        times.append(time.perf_counter() - start)
    return 1000 * statistics.median(times)


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--threads", type=int, nargs="+", default=[1, 4])
    parser.add_argument("--runs", type=int, default=100, help="timed runs per model (median)")
    parser.add_argument("--kinds", nargs="+", default=["float32", "int8"])
    args = parser.parse_args()

    from ghostnet_tf.export import tflite_op_counts

    names = list(GHOSTNETS) + list(MOBILENETS)
    with tempfile.TemporaryDirectory() as work_dir:
        models = {name: convert(name, args.kinds, work_dir) for name in names}
    latency = {}
    # Interleave the models within each round, so that a slow spell of the machine hits all.
    for threads in args.threads:
        for name in names:
            for kind in args.kinds:
                latency[name, kind, threads] = median_latency_ms(
                    models[name][kind], threads, args.runs)

    print(f"LiteRT (ai_edge_litert, XNNPACK), 224x224, batch 1, median of {args.runs} runs; "
          f"{platform.processor() or platform.machine()}, {os.cpu_count()} CPUs\n")
    header = " | ".join(f"{kind} {t} thr (ms)" for t in args.threads for kind in args.kinds)
    sizes = " | ".join(f"size {kind} (MB)" for kind in args.kinds)
    partitions = " | ".join(f"XNNPACK parts {kind}" for kind in args.kinds)
    print(f"| model | {header} | {sizes} | {partitions} |")
    print("| --- |" + " ---: |" * (len(args.threads) + 2) * len(args.kinds))
    for name in names:
        cells = " | ".join(f"{latency[name, kind, t]:.2f}"
                           for t in args.threads for kind in args.kinds)
        sizes = " | ".join(f"{len(models[name][kind]) / 2**20:.2f}" for kind in args.kinds)
        parts = " | ".join(str(xnnpack_partitions(models[name][kind])) for kind in args.kinds)
        print(f"| {name} | {cells} | {sizes} | {parts} |")

    print(f"\n| ratio | {' | '.join(f'{t} thread(s)' for t in args.threads)} | goal |")
    print("| --- |" + " ---: |" * len(args.threads) + " --- |")
    ratio = " | ".join(f"{latency['GhostNet 1.0x', 'float32', t] / latency[REFERENCE, 'float32', t]:.2f}"
                       for t in args.threads)
    print(f"| GhostNet 1.0x fp32 / {REFERENCE} fp32 | {ratio} | <= 0.9 (1 thread) |")
    if "int8" in args.kinds:
        for name in names:
            ratio = " | ".join(f"{latency[name, 'int8', t] / latency[name, 'float32', t]:.2f}"
                               for t in args.threads)
            goal = "<= 0.55" if name == "GhostNet 1.0x" else ""
            print(f"| {name} int8 / fp32 | {ratio} | {goal} |")

    print("\nOps of the float32 graphs:")
    counts = {name: tflite_op_counts(models[name]["float32"]) for name in names}
    ops = sorted({op for count in counts.values() for op in count})
    print("| op | " + " | ".join(names) + " |")
    print("| --- |" + " ---: |" * len(names))
    for op in ops:
        print(f"| {op} | " + " | ".join(str(counts[name].get(op, 0)) for name in names) + " |")
    print("| total | " + " | ".join(str(sum(counts[name].values())) for name in names) + " |")
    return 0


if __name__ == "__main__":
    sys.exit(main())
