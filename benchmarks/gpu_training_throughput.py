"""Training throughput on a GPU: the library's models in Keras (JAX) against timm's in PyTorch.

    python benchmarks/gpu_training_throughput.py [--models ghostnet_100,ghostnetv3_100]
        [--batch 256] [--steps 50] [--windows 3] [--torch-python PYTHON] [--torch-compile]

The same model (the registry name is timm's too), batch, input (224x224, random images and
labels on the device) and precision (bfloat16 compute, float32 weights: Keras'
"mixed_bfloat16" policy, torch.autocast) in both, SGD with momentum 0.9 and cross-entropy
on logits; GhostNetV3 in its train form (re-parameterizable branches) in both. Each
(framework, model) runs in a process of its own (JAX and PyTorch do not share a GPU well):
it compiles and warms up, then times `--windows` windows of `--steps` training steps, each
ended by waiting for the device. Prints img/s per window (min / median) and the Keras /
timm ratio of each window. On the device machine, which has JAX, PyTorch and timm but no
TensorFlow: Keras' wheels carried (../shared/tools/device-wheels.sh), `KERAS_BACKEND=jax`.
Runs on a CPU too (`--batch 8 --steps 2`), to check the script, not to measure.
"""
import argparse
import json
import os
import statistics
import subprocess
import sys
import time

SIZE = 224
CLASSES = 1000


def keras_worker(name, batch, steps, windows):
    os.environ.setdefault("KERAS_BACKEND", "jax")
    os.environ.setdefault("XLA_PYTHON_CLIENT_PREALLOCATE", "false")
    import keras
    import numpy as np

    sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
    from ghostnet_tf.models import get_model

    keras.mixed_precision.set_global_policy("mixed_bfloat16")
    model = get_model(name, classifier_activation=None)
    model.compile(optimizer=keras.optimizers.SGD(0.1, momentum=0.9),
                  loss=keras.losses.SparseCategoricalCrossentropy(from_logits=True),
                  jit_compile=True)
    rng = np.random.default_rng(0)
    images = keras.ops.convert_to_tensor(rng.uniform(0, 255, (batch, SIZE, SIZE, 3)), "float32")
    labels = keras.ops.convert_to_tensor(rng.integers(0, CLASSES, (batch,)), "int32")
    for _ in range(3):  # compile and warm up
        model.train_on_batch(images, labels)
    times = []
    for _ in range(windows):
        start = time.perf_counter()
        for _ in range(steps):
            loss = model.train_on_batch(images, labels)  # a float: waits for the device
        times.append(time.perf_counter() - start)
    import jax

    return {"framework": f"Keras {keras.__version__} ({keras.backend.backend()})",
            "device": jax.devices()[0].device_kind,
            "img_per_s": [batch * steps / t for t in times], "loss": float(loss)}


def torch_worker(name, batch, steps, windows, compile_model):
    import timm
    import torch

    device = "cuda" if torch.cuda.is_available() else "cpu"
    model = timm.create_model(name, pretrained=False, num_classes=CLASSES).to(device)
    model = model.to(memory_format=torch.channels_last).train()
    step_model = torch.compile(model) if compile_model else model
    optimizer = torch.optim.SGD(model.parameters(), lr=0.1, momentum=0.9)
    loss_fn = torch.nn.CrossEntropyLoss()
    generator = torch.Generator().manual_seed(0)
    images = (torch.rand(batch, 3, SIZE, SIZE, generator=generator) * 255).to(
        device, memory_format=torch.channels_last)
    labels = torch.randint(0, CLASSES, (batch,), generator=generator).to(device)

    def step():
        optimizer.zero_grad(set_to_none=True)
        with torch.autocast(device, dtype=torch.bfloat16):
            loss = loss_fn(step_model(images), labels)
        loss.backward()
        optimizer.step()
        return loss

    for _ in range(3):
        step()
    times = []
    for _ in range(windows):
        if device == "cuda":
            torch.cuda.synchronize()
        start = time.perf_counter()
        for _ in range(steps):
            loss = step()
        loss = float(loss.detach())  # waits for the device
        times.append(time.perf_counter() - start)
    return {"framework": f"timm {timm.__version__}, PyTorch {torch.__version__}"
                         f"{' compiled' if compile_model else ' eager'}",
            "device": torch.cuda.get_device_name() if device == "cuda" else "cpu",
            "img_per_s": [batch * steps / t for t in times], "loss": loss}


def run_worker(python, args, kind, name):
    command = [python, os.path.abspath(__file__), "--worker", kind, "--models", name,
               "--batch", str(args.batch), "--steps", str(args.steps),
               "--windows", str(args.windows)] + (["--torch-compile"] if args.torch_compile
                                                  else [])
    try:
        finished = subprocess.run(command, stdout=subprocess.PIPE, text=True,
                                  timeout=args.worker_timeout)
    except subprocess.TimeoutExpired:
        print(f"{kind} {name}: no result within --worker-timeout {args.worker_timeout} s",
              file=sys.stderr, flush=True)
        return None
    lines = finished.stdout.strip().splitlines()
    if finished.returncode or not lines:
        return None
    return json.loads(lines[-1])


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--models", default="ghostnet_100,ghostnetv3_100")
    parser.add_argument("--batch", type=int, default=256)
    parser.add_argument("--steps", type=int, default=50, help="training steps per window")
    parser.add_argument("--windows", type=int, default=3)
    parser.add_argument("--torch-python", default=sys.executable,
                        help="Python with torch and timm (default: this one)")
    parser.add_argument("--torch-compile", action="store_true",
                        help="time timm's model under torch.compile, not eager")
    parser.add_argument("--worker-timeout", type=float, default=None,
                        help="seconds one (framework, model) process may take, compilation "
                             "included, before it is given up (default: no limit)")
    parser.add_argument("--worker", choices=("keras", "torch"), help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.worker == "keras":
        print(json.dumps(keras_worker(args.models, args.batch, args.steps, args.windows)))
        return 0
    if args.worker == "torch":
        print(json.dumps(torch_worker(args.models, args.batch, args.steps, args.windows,
                                      args.torch_compile)))
        return 0

    print(f"Training throughput, {SIZE}x{SIZE}, batch {args.batch}, bfloat16 compute; "
          f"{args.windows} windows of {args.steps} steps after warm-up\n")
    print("| model | framework | device | img/s min / median | windows | Keras / timm, "
          "each window |")
    print("| --- | --- | --- | ---: | --- | --- |")
    for name in args.models.split(","):
        # timm first: each row is printed as soon as its process ends, so that a run cut
        # short keeps what it measured.
        torch_result = run_worker(args.torch_python, args, "torch", name)
        _print_row(name, torch_result)
        _print_row(name, run_worker(sys.executable, args, "keras", name), torch_result)
    return 0


def _print_row(name, result, reference=None):
    if result is None:
        print(f"| {name} | (failed: see its error above) | | | | |", flush=True)
        return
    rates = result["img_per_s"]
    ratio = "" if reference is None else ", ".join(
        f"{mine / theirs:.2f}" for mine, theirs in zip(rates, reference["img_per_s"]))
    print(f"| {name} | {result['framework']} | {result['device']} | "
          f"{min(rates):.0f} / {statistics.median(rates):.0f} | "
          f"{', '.join(f'{rate:.0f}' for rate in rates)} | {ratio} |", flush=True)


if __name__ == "__main__":
    sys.exit(main())
