"""Median latency of GhostNet's `.tflite` files against MobileNetV3 and against other runtimes.

    python benchmarks/tflite_latency.py [--threads 1] [--runs 100] [--rounds 3]

Converts GhostNet 0.5/1.0/1.3, GhostNetV2 1.0 and GhostNetV3 1.0 (ours, through the export
path: the files export.py writes) and MobileNetV3-Large 1.0/0.75 and MobileNetV3-Small
(keras.applications, through the same converter) to float32 and full-int8 `.tflite`, runs
each in `ai_edge_litert` (XNNPACK) at 224x224, batch 1, and prints median latencies, the
ratios of the goals, the effect of each graph rewrite of `ghostnet_tf.export_rewrites`, and op counts. With the
benchmarks extra installed (timm, onnx, onnxruntime), the same network also runs as timm's
`ghostnet_100` in PyTorch (eager) and, exported to ONNX, in ONNX Runtime, on as many threads.
Weights are random and int8 is calibrated on random images: latency does not depend on the
values. Every model is timed in each round, one after the other, so that the ratios hold on
a noisy machine where the absolute times do not; each round prints its own ratios.
"""
import argparse
import json
import os
import platform
import statistics
import subprocess
import sys
import tempfile

import numpy as np
from timing import timed_interleaved

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

# GhostNetV3 converts folded (export.py reparameterizes it): GhostNetV2's graph.
GHOSTNETS = {"GhostNet 0.5x": ("ghostnet_050", None), "GhostNet 1.0x": ("ghostnet_100", None),
             "GhostNet 1.3x": ("ghostnet_130", None), "GhostNetV2 1.0x": ("ghostnetv2_100", None),
             "GhostNetV3 1.0x": ("ghostnetv3_100", None)}
MOBILENETS = {"MobileNetV3-Large 1.0": ("Large", 1.0), "MobileNetV3-Large 0.75": ("Large", 0.75),
              "MobileNetV3-Small 1.0": ("Small", 1.0)}
REFERENCE = "MobileNetV3-Large 0.75"
SUBJECT = "GhostNet 1.0x"
# GhostNet 1.0x with no rewrite, each alone, and both with the duplicate form from other
# map sizes up (the export's choice is DUPLICATE_MIN_PIXELS).
BOTH = ("fold_input_normalization", "duplicate_ghost_modules")
VARIANTS = {"no rewrites": ((), None),
            "fold_input_normalization only": (BOTH[:1], None),
            "duplicate_ghost_modules only": (BOTH[1:], None),
            "both, duplicate form from 112x112": (BOTH, 112 * 112),
            "both, duplicate form from 56x56": (BOTH, 56 * 56),
            "both, duplicate form from 28x28": (BOTH, 28 * 28),
            "both, duplicate form everywhere": (BOTH, 1)}
SIZE = 224


def calibration_images():
    return np.random.default_rng(0).uniform(0, 255, (8, SIZE, SIZE, 3)).astype("float32")


def ghostnet_files(name, kinds, rewrites=None, duplicate_min_pixels=None):
    """{kind: bytes} of a GhostNet registry model, as export.py writes them."""
    from ghostnet_tf import export_rewrites
    from ghostnet_tf.export import ExportOptions, tflite_files
    from ghostnet_tf.models import get_model

    default = export_rewrites.DUPLICATE_MIN_PIXELS
    if duplicate_min_pixels is not None:
        export_rewrites.DUPLICATE_MIN_PIXELS = duplicate_min_pixels
    try:
        rewrites = export_rewrites.REWRITES if rewrites is None else rewrites
        return tflite_files(get_model(name), kinds, calibration_images(),
                            options=ExportOptions(rewrites=rewrites))
    finally:
        export_rewrites.DUPLICATE_MIN_PIXELS = default


def mobilenet_files(name, kinds, work_dir):
    """{kind: bytes} of a keras.applications MobileNetV3, through the library's converter."""
    import keras

    size, alpha = MOBILENETS[name]
    return application_files(getattr(keras.applications, f"MobileNetV3{size}")(
        input_shape=(SIZE, SIZE, 3), alpha=alpha, weights=None), kinds, work_dir)


def application_files(model, kinds, work_dir):
    """{kind: bytes} of a Keras model (a keras.applications one), through the library's
    converter: its SavedModel, then float32 or int8 calibrated like the GhostNets."""
    from ghostnet_tf.export import convert_tflite, export_saved_model

    saved_model = os.path.join(work_dir, model.name)
    export_saved_model(model, saved_model)
    return {kind: convert_tflite(saved_model, kind, calibration_images()) for kind in kinds}


def kept_files(name, build, kinds, folder):
    """{kind: bytes} from `build()`, or from `folder` where an earlier run kept them."""
    if folder is None:
        return build()
    paths = {kind: os.path.join(folder, f"{name.replace(' ', '_').replace(',', '')}_{kind}.tflite")
             for kind in kinds}
    if all(os.path.exists(path) for path in paths.values()):
        return {kind: open(path, "rb").read() for kind, path in paths.items()}
    files = build()
    os.makedirs(folder, exist_ok=True)
    for kind, path in paths.items():
        with open(path, "wb") as file:
            file.write(files[kind])
    return files


def cpu_description():
    """The CPU's model name and whether it has the int8 dot-product instructions that
    XNNPACK's int8 kernels use (AVX-512 VNNI / AVX-VNNI): int8 speed depends on them."""
    try:
        with open("/proc/cpuinfo") as file:
            info = file.read()
    except OSError:
        return f"{platform.processor() or platform.machine()}, {os.cpu_count()} CPUs"
    name = next((line.split(":", 1)[1].strip() for line in info.splitlines()
                 if line.startswith("model name")), platform.machine())
    flags = next((line.split(":", 1)[1].split() for line in info.splitlines()
                  if line.startswith("flags")), [])
    vnni = [flag for flag in ("avx512_vnni", "avx_vnni") if flag in flags]
    return f"{name}, {os.cpu_count()} CPUs, {' '.join(vnni) or 'no VNNI'}"


def litert_runner(content, threads):
    from ai_edge_litert.interpreter import Interpreter

    interpreter = Interpreter(model_content=content, num_threads=threads)
    interpreter.allocate_tensors()
    detail = interpreter.get_input_details()[0]
    image = np.random.default_rng(0).integers(0, 255, detail["shape"]).astype(detail["dtype"])
    interpreter.set_tensor(detail["index"], image)
    return interpreter.invoke


class Peers:
    """timm's ghostnet_100 in PyTorch and ONNX Runtime, timed by benchmarks/peer_runtimes.py
    in a process of its own (timm beside TensorFlow crashes), a few calls at a time."""

    def __init__(self, threads, work_dir):
        script = os.path.join(os.path.dirname(os.path.abspath(__file__)), "peer_runtimes.py")
        self.process = subprocess.Popen(
            [sys.executable, script, str(threads), work_dir],
            stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)
        line = self.process.stdout.readline()
        self.names = json.loads(line) if line else []
        if not self.names:
            print("(no PyTorch/ONNX Runtime rows: benchmarks/peer_runtimes.py failed; "
                  "pip install -e \".[benchmarks]\")\n")

    def timed(self, count):
        """{(name, "float32"): [seconds of each of `count` calls]} of each peer."""
        if not self.names:
            return {}
        self.process.stdin.write(f"{count}\n")
        self.process.stdin.flush()
        return {(name, "float32"): values
                for name, values in json.loads(self.process.stdout.readline()).items()}

    def close(self):
        self.process.stdin.close()
        self.process.wait()


def time_interleaved(runners, runs, peers, chunk=10, warmup=10):
    """{key: median ms} of `timed_interleaved`."""
    return {key: 1000 * statistics.median(values) for key, values
            in timed_interleaved(runners, runs, peers, chunk, warmup).items()}


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--runs", type=int, default=100, help="timed runs per model (median)")
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--files-dir", help="keep the converted files here, and time those "
                                            "already there instead of converting again")
    args = parser.parse_args()

    from ghostnet_tf.export import tflite_op_counts

    kinds = ("float32", "int8")
    with tempfile.TemporaryDirectory() as work_dir:
        builders = {name: (lambda arch=arch: ghostnet_files(arch, kinds))
                    for name, (arch, _) in GHOSTNETS.items()}
        for variant, (rewrites, pixels) in VARIANTS.items():
            builders[f"{SUBJECT}, {variant}"] = (
                lambda r=rewrites, p=pixels: ghostnet_files("ghostnet_100", kinds, r, p))
        for name in MOBILENETS:
            builders[name] = lambda name=name: mobilenet_files(name, kinds, work_dir)
        files = {name: kept_files(name, build, kinds, args.files_dir)
                 for name, build in builders.items()}
        runners = {(name, kind): litert_runner(content, args.threads)
                   for name, contents in files.items() for kind, content in contents.items()}
        peers = Peers(args.threads, work_dir)
        rounds = [time_interleaved(runners, args.runs, peers) for _ in range(args.rounds)]
        peers.close()
    peers = peers.names
    latency = {key: statistics.median(r[key] for r in rounds) for key in rounds[0]}

    print(f"LiteRT (ai_edge_litert, XNNPACK), {SIZE}x{SIZE}, batch 1, {args.threads} "
          f"thread(s); median of {args.runs} runs per round, {args.rounds} rounds; "
          f"{cpu_description()}\n")
    print("| model | float32 (ms) | int8 (ms) | float32 / " + REFERENCE +
          " | int8 / float32 | size float32 (MB) | size int8 (MB) |")
    print("| --- | ---: | ---: | ---: | ---: | ---: | ---: |")
    reference = latency[REFERENCE, "float32"]
    for name in files:
        fp32, int8 = latency[name, "float32"], latency[name, "int8"]
        print(f"| {name} | {fp32:.2f} | {int8:.2f} | {fp32 / reference:.2f} | "
              f"{int8 / fp32:.2f} | {len(files[name]['float32']) / 2**20:.2f} | "
              f"{len(files[name]['int8']) / 2**20:.2f} |")
    for name in peers:
        print(f"| {name} | {latency[name, 'float32']:.2f} | - | "
              f"{latency[name, 'float32'] / reference:.2f} | - | - | - |")

    goals = [(f"{SUBJECT} float32 / {REFERENCE} float32", (SUBJECT, "float32"),
              (REFERENCE, "float32"), 1.10),
             (f"{SUBJECT} int8 / {SUBJECT} float32", (SUBJECT, "int8"), (SUBJECT, "float32"),
              0.50)]
    for name in peers:
        if "ONNX" in name:
            goals.append((f"{SUBJECT} float32 (LiteRT) / {name}", (SUBJECT, "float32"),
                          (name, "float32"), 0.70))
        goals.append((f"{SUBJECT} int8 (LiteRT) / {name}", (SUBJECT, "int8"),
                      (name, "float32"), None))
    print("\n| ratio | " + " | ".join(f"round {i + 1}" for i in range(args.rounds)) +
          " | goal | met in every round |")
    print("| --- |" + " ---: |" * args.rounds + " ---: | --- |")
    for label, numerator, denominator, goal in goals:
        ratios = [r[numerator] / r[denominator] for r in rounds]
        met = "-" if goal is None else ("yes" if max(ratios) <= goal else "no")
        print(f"| {label} | " + " | ".join(f"{ratio:.2f}" for ratio in ratios) +
              f" | {'-' if goal is None else f'<= {goal:.2f}'} | {met} |")

    print(f"\nRewrites, {SUBJECT} (same rounds; ratio to no rewrites):")
    print("| variant | float32 (ms) | int8 (ms) | float32 ratio | int8 ratio | ops float32 |")
    print("| --- | ---: | ---: | ---: | ---: | ---: |")
    before = f"{SUBJECT}, no rewrites"
    for name in [before] + [f"{SUBJECT}, {v}" for v in VARIANTS if v != "no rewrites"] + \
            [SUBJECT]:
        label = "both (the export default)" if name == SUBJECT else name[len(SUBJECT) + 2:]
        print(f"| {label} | {latency[name, 'float32']:.2f} | {latency[name, 'int8']:.2f} | "
              f"{latency[name, 'float32'] / latency[before, 'float32']:.3f} | "
              f"{latency[name, 'int8'] / latency[before, 'int8']:.3f} | "
              f"{sum(tflite_op_counts(files[name]['float32']).values())} |")

    print("\nOps of the float32 graphs:")
    shown = list(GHOSTNETS) + [before] + list(MOBILENETS)
    counts = {name: tflite_op_counts(files[name]["float32"]) for name in shown}
    ops = sorted({op for count in counts.values() for op in count})
    print("| op | " + " | ".join(shown) + " |")
    print("| --- |" + " ---: |" * len(shown))
    for op in ops:
        print(f"| {op} | " + " | ".join(str(counts[name].get(op, 0)) for name in shown) + " |")
    print("| total | " + " | ".join(str(sum(counts[name].values())) for name in shown) + " |")
    return 0


if __name__ == "__main__":
    sys.exit(main())
