"""Which learning rates a quantization-aware fine-tune takes, against the same fine-tune in
float, from one trained run.

    python benchmarks/qat_learning_rate.py --config configs/fashion_mnist_ghostnetv2_100.yaml \
        --run checkpoints/fashion_mnist_ghostnetv2_100_seed0 \
        --data-dir /usr/share/datasets/fashion-mnist --steps 20 --lrs 0.005 0.0005 0.0001

For each learning rate, two runs of train.py start from the run's best.keras and train
`--steps` steps (cosine, no warm-up, the recipe's batch and seed): one in float
(`training.quantize` null) and one with `training.quantize=int8`. Each is validated by the
trainer on the whole test split at its end (the quantization-aware run in its simulated int8
form). The runs go to <run>_lr<lr>_<mode>; one whose results.json exists is not run again,
so the script can be run in parts (one core each) and once more to print the whole table.
`--seed N` runs them with the recipe's seed set to N (to <run>_lr<lr>_<mode>_seedN).
"""
import argparse
import json
import os
import subprocess
import sys

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
MODES = {"float": "null", "int8": "int8"}


def fine_tune(args, lr, mode):
    """results.json of the `mode` fine-tune of `args.run` at `lr`, run if missing."""
    name = f"{os.path.basename(os.path.normpath(args.run))}_lr{lr}_{mode}"
    if args.seed is not None:
        name += f"_seed{args.seed}"
    results = os.path.join(os.path.dirname(os.path.normpath(args.run)), name, "results.json")
    if not os.path.exists(results):
        overrides = [f"run_name={name}", f"model.weights={os.path.join(args.run, 'best.keras')}",
                     f"training.quantize={MODES[mode]}", f"optimizer.lr={lr}",
                     f"schedule.iterations={args.steps}", "schedule.epochs=null",
                     "schedule.warmup_epochs=0",
                     f"training.checkpoint_dir={os.path.dirname(os.path.normpath(args.run))}"]
        if args.data_dir:
            overrides.append(f"data.data_dir={args.data_dir}")
        if args.seed is not None:
            overrides.append(f"seed={args.seed}")
        command = [sys.executable, os.path.join(ROOT, "train.py"), "--config", args.config]
        for override in overrides:
            command += ["--set", override]
        subprocess.run(command, check=True)
    with open(results) as handle:
        return json.load(handle)


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--config", required=True, help="the run's recipe")
    parser.add_argument("--run", required=True, help="a trained run (its best.keras)")
    parser.add_argument("--data-dir")
    parser.add_argument("--steps", type=int, default=20)
    parser.add_argument("--lrs", type=float, nargs="+", default=[0.005, 0.0005, 0.0001])
    parser.add_argument("--modes", nargs="+", choices=sorted(MODES), default=["float", "int8"])
    parser.add_argument("--seed", type=int, help="the recipe's seed, if not its own")
    args = parser.parse_args()

    rows = [(lr, {mode: fine_tune(args, lr, mode)["top1"] for mode in args.modes})
            for lr in args.lrs]
    seed = "" if args.seed is None else f", seed {args.seed}"
    print(f"\n{args.run}: test top-1 after {args.steps} steps from its best.keras{seed}")
    print("\n| lr | " + " | ".join(f"{mode} fine-tune" for mode in args.modes) + " |")
    print("| ---: |" + " ---: |" * len(args.modes))
    for lr, top1 in rows:
        print(f"| {lr:g} | " + " | ".join(f"{top1[mode]:.2%}" for mode in args.modes) + " |")
    return 0


if __name__ == "__main__":
    sys.exit(main())
