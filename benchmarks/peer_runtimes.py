"""Times timm's ghostnet_100 in PyTorch (eager) and in ONNX Runtime, for tflite_latency.py.

    python benchmarks/peer_runtimes.py THREADS WORK_DIR

Runs in its own process, because timm and TensorFlow in one process crash. Loads both
peers, prints a JSON line with their names, then answers each line N read from stdin with a
JSON line {name: [seconds of each of N calls]}, so that the parent can interleave them with
its own models.
"""
import json
import sys

from timing import timed

SIZE = 224


def main():
    threads, work_dir = int(sys.argv[1]), sys.argv[2]
    import onnxruntime
    import timm
    import torch

    torch.set_num_threads(threads)
    model = timm.create_model("ghostnet_100", pretrained=False).eval()
    image = torch.rand(1, 3, SIZE, SIZE)

    def run_torch():
        with torch.inference_mode():
            model(image)

    path = f"{work_dir}/ghostnet_100.onnx"
    torch.onnx.export(model, (image,), path, input_names=["image"], dynamo=False,
                      opset_version=17)
    options = onnxruntime.SessionOptions()
    options.intra_op_num_threads = options.inter_op_num_threads = threads
    options.graph_optimization_level = onnxruntime.GraphOptimizationLevel.ORT_ENABLE_ALL
    session = onnxruntime.InferenceSession(path, options, providers=["CPUExecutionProvider"])
    feed = {"image": image.numpy()}
    runners = {f"timm ghostnet_100, PyTorch {torch.__version__} eager": run_torch,
               f"timm ghostnet_100, ONNX Runtime {onnxruntime.__version__}":
                   lambda: session.run(None, feed)}
    print(json.dumps(list(runners)), flush=True)
    for line in sys.stdin:
        count = int(line)
        print(json.dumps({name: timed(run, count) for name, run in runners.items()}),
              flush=True)


if __name__ == "__main__":
    main()
