"""Latency of our `model.onnx` against the PyTorch GhostNet exported by torch.onnx, in ONNX
Runtime, OpenVINO and ncnn: the file a PyTorch user would bring to those runtimes.

    taskset -c 1 python benchmarks/onnx_runtimes.py [--runs 200] [--rounds 3]

This process writes our `model.onnx` of GhostNet 1.0x and GhostNetV2 1.0x (GhostNetV3 1.0x
exports folded to GhostNetV2's graph) with export.py's code, NHWC (the default) and NCHW
(`--onnx-layout nchw`). A second process (TensorFlow and torch in one process crash) runs
this file with `--time WORK_DIR`: it exports the official architecture in PyTorch
(reference/torch_ghostnet.py, the model the converted weights are checked against, whose
weights timm's ghostnet_100 / ghostnetv2_100 load unchanged) with torch.onnx, converts every
file to ncnn with pnnx, and times each file in each runtime on one thread, batch 1, 224x224,
interleaved (benchmarks/timing.py), printing each round's median, the minimum, and the ratio
ours / PyTorch's per runtime and round. Our files take [0, 255] pixels, normalize inside and
end in a softmax; PyTorch's take normalized images and return logits. Weights are random:
latency does not depend on the values. OpenVINO gets each file reshaped to batch 1, as
docs/deployment.md tells its users (our files have a free batch size, which OpenVINO ran about
1.1x slower). Needs the test extra (onnxruntime, openvino, ncnn,
pnnx, torch).
"""
import argparse
import os
import statistics
import subprocess
import sys
import tempfile

import numpy as np

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

SIZE = 224
MODELS = {"GhostNet 1.0x": ("ghostnet_100", 1), "GhostNetV2 1.0x": ("ghostnetv2_100", 2)}
LAYOUTS = ("nhwc", "nchw")


def write_ours(work_dir):
    """Our model.onnx of each model and layout, as export.py writes it."""
    from ghostnet_tf.export import ExportOptions
    from ghostnet_tf.export.common import Conversion, inference_copy
    from ghostnet_tf.export.onnx import onnx_files, onnx_metadata
    from ghostnet_tf.models import get_model

    for name, _ in MODELS.values():
        model = inference_copy(get_model(name))
        for layout in LAYOUTS:
            conversion = Conversion(options=ExportOptions(onnx_layout=layout))
            content = onnx_files(model, ["onnx"], layout=layout,
                                 metadata=onnx_metadata(model, conversion, layout))["onnx"]
            with open(os.path.join(work_dir, f"ours_{name}_{layout}.onnx"), "wb") as file:
                file.write(content)


def _torch_files(work_dir):
    import torch

    from reference.torch_ghostnet import random_ghostnet

    for name, version in MODELS.values():
        model = random_ghostnet(1.0, version=version)
        image = torch.rand(1, 3, SIZE, SIZE)
        torch.onnx.export(model, (image,), os.path.join(work_dir, f"torch_{name}_nchw.onnx"),
                          input_names=["images"], dynamo=False, opset_version=17)
    return f"torch {torch.__version__} (torch.onnx, opset 17)"


def _runners(path, layout):
    """{runtime: call} of one `.onnx` file, one thread each."""
    import ncnn
    import onnxruntime
    import openvino

    shape = (1, SIZE, SIZE, 3) if layout == "nhwc" else (1, 3, SIZE, SIZE)
    image = np.random.default_rng(0).uniform(0, 255, shape).astype("float32")
    options = onnxruntime.SessionOptions()
    options.intra_op_num_threads = options.inter_op_num_threads = 1
    session = onnxruntime.InferenceSession(path, options, providers=["CPUExecutionProvider"])
    core = openvino.Core()
    network = core.read_model(path)
    network.reshape(list(shape))  # a fixed batch: OpenVINO runs a free one about 1.1x slower
    compiled = core.compile_model(network, "CPU", {
        "INFERENCE_NUM_THREADS": 1, "INFERENCE_PRECISION_HINT": "f32",
        "PERFORMANCE_HINT": "LATENCY"})
    request = compiled.create_infer_request()
    pnnx = os.path.join(os.path.dirname(sys.executable), "pnnx")
    shape_text = ",".join(map(str, shape))
    done = subprocess.run([pnnx, path, f"inputshape=[{shape_text}]"], capture_output=True,
                          text=True)
    if done.returncode != 0 or "ignore" in done.stdout + done.stderr:
        raise SystemExit(f"pnnx could not convert {path}:\n{done.stdout}{done.stderr}")
    stem = path[:-len(".onnx")]
    net = ncnn.Net()
    net.opt.num_threads = 1
    net.load_param(stem + ".ncnn.param")
    net.load_model(stem + ".ncnn.bin")
    mat = ncnn.Mat(image, batch_index=0).clone()

    def run_ncnn():
        with net.create_extractor() as extractor:
            extractor.input("in0", mat)
            extractor.extract("out0")

    return {"ONNX Runtime": lambda: session.run(None, {"images": image}),
            "OpenVINO": lambda: request.infer({0: image}),
            "ncnn": run_ncnn}


def time_all(work_dir, runs, rounds):
    from timing import timed_interleaved

    import ncnn
    import onnxruntime
    import openvino

    peer = _torch_files(work_dir)
    runners = {}
    for label, (name, _) in MODELS.items():
        files = [(f"ours {layout.upper()}", f"ours_{name}_{layout}.onnx", layout)
                 for layout in LAYOUTS] + [("PyTorch", f"torch_{name}_nchw.onnx", "nchw")]
        for source, file, layout in files:
            for runtime, run in _runners(os.path.join(work_dir, file), layout).items():
                runners[(label, runtime, source)] = run
    print(f"reference: {peer}; onnxruntime {onnxruntime.__version__}, openvino "
          f"{openvino.__version__}, ncnn {ncnn.__version__}; 1 thread, batch 1, {SIZE}x{SIZE}, "
          f"{runs} calls per file per round, interleaved")
    medians = {key: [] for key in runners}
    minimums = {key: float("inf") for key in runners}
    for index in range(rounds):
        times = timed_interleaved({str(key): run for key, run in runners.items()}, runs)
        for key in runners:
            medians[key].append(statistics.median(times[str(key)]) * 1e3)
            minimums[key] = min(minimums[key], min(times[str(key)]) * 1e3)
    print("\n| model | runtime | file | median ms per round | min ms | ours / PyTorch per round |")
    print("| --- | --- | --- | --- | ---: | --- |")
    for (label, runtime, source), values in medians.items():
        reference = medians[(label, runtime, "PyTorch")]
        ratios = "-" if source == "PyTorch" else ", ".join(
            f"{mine / theirs:.2f}" for mine, theirs in zip(values, reference))
        print(f"| {label} | {runtime} | {source} | {', '.join(f'{v:.2f}' for v in values)} | "
              f"{minimums[(label, runtime, source)]:.2f} | {ratios} |")


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--runs", type=int, default=200)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--time", metavar="WORK_DIR", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.time:
        time_all(args.time, args.runs, args.rounds)
        return 0
    with tempfile.TemporaryDirectory() as work_dir:
        write_ours(work_dir)
        return subprocess.run([sys.executable, os.path.abspath(__file__), "--time", work_dir,
                               "--runs", str(args.runs), "--rounds", str(args.rounds)],
                              cwd=os.path.dirname(os.path.abspath(__file__))).returncode


if __name__ == "__main__":
    sys.exit(main())
