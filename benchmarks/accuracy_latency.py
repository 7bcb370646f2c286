"""Accuracy per millisecond: GhostNets with published weights against the mobile peers.

    python benchmarks/accuracy_latency.py [--runs 200] [--rounds 3] [--files-dir DIR]
        [--peer-python PYTHON] [--plot docs/accuracy_latency.png]
        [--json docs/accuracy_latency.json]

Every registry model with published ImageNet weights (as export.py writes it; GhostNetV3
folded) and the models a user would pick instead: keras.applications MobileNetV3-Small 1.0,
MobileNetV3-Large 0.75 and 1.0 and EfficientNet-B0 (through the same converter), and timm's
MobileNetV4-conv-S converted by litert-torch (benchmarks/litert_torch_peers.py, run with
`--peer-python`, the Python of a virtual environment with the benchmarks extra and
litert-torch; without it that row is left out, and said so). Each runs in LiteRT (XNNPACK) at
224x224, batch 1, as float32 and full int8, on 1 thread pinned to core 0 and on 2 threads
pinned to cores 0 and 1; every model, kind and thread count is timed in each round, in turn.
Prints min / median latencies, the per-round ratios of the comparisons that matter, the
Pareto front of published top-1 against median latency for each (kind, threads) and the
latency budgets at which a GhostNet is the most accurate model that fits, and draws the
chart; `--json` writes the GhostNets' median latencies for the model cards of
`ghostnet-presets --latency`. Top-1 is the published figure of each model's weights (ImageNet validation, float);
int8 accuracy is not measured here (no ImageNet on this machine): the int8 points assume the
float figure. Weights and calibration images are random: latency does not depend on them.
"""
import argparse
import os
import statistics
import subprocess
import sys
import tempfile

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

KINDS = ("float32", "int8")
THREADS = (1, 2)
# Published ImageNet top-1 (%) of the peers' weights, with where it is published.
KERAS_PEERS = {
    "MobileNetV3-Small 1.0": ("MobileNetV3Small", {"alpha": 1.0}, 68.1,
                              "keras.applications MobileNetV3 docstring"),
    "MobileNetV3-Large 0.75": ("MobileNetV3Large", {"alpha": 0.75}, 73.3,
                               "keras.applications MobileNetV3 docstring"),
    "MobileNetV3-Large 1.0": ("MobileNetV3Large", {"alpha": 1.0}, 75.6,
                              "keras.applications MobileNetV3 docstring"),
    "EfficientNet-B0": ("EfficientNetB0", {}, 77.1, "keras.io applications table"),
}
MOBILENETV4 = ("MobileNetV4-conv-S", 73.8, "MobileNetV4 paper, timm e2400_r224 weights")
# (subject, reference): the comparisons printed for every round.
COMPARISONS = (("GhostNet 1.0x", "MobileNetV3-Large 1.0"),
               ("GhostNet 1.3x PaddleClas", "EfficientNet-B0"),
               ("GhostNet 1.0x PaddleClas", "GhostNet 1.0x"),
               ("GhostNetV2 1.0x", "MobileNetV3-Large 1.0"),
               ("GhostNetV3 1.0x", "EfficientNet-B0"),
               ("GhostNetV3 1.0x", "MobileNetV3-Large 1.0"),
               ("GhostNet 1.0x", "MobileNetV4-conv-S"))


def ghostnet_rows():
    """{label: (registry name, best published top-1, its tag)} of every model with weights
    (one row per network: its other weight sets run the same file, and the table names
    them beside the best)."""
    from ghostnet_tf.models import list_models, model_entry

    rows = {}
    for name in list_models(pretrained=True):
        entry = model_entry(name)
        tag, published = max(entry.weights.items(), key=lambda item: item[1].top1)
        family = name.split("_")[0].replace("ghostnet", "GhostNet").replace("v", "V")
        design = " PaddleClas" if entry.family.endswith("_paddle") else ""
        rows[f"{family} {entry.width:.1f}x{design}"] = (name, published.top1, tag)
    return rows


def other_weights(name, best_tag):
    """"tag: top-1" of a model's weight sets other than `best_tag`."""
    from ghostnet_tf.models import model_entry

    return "; ".join(f"{tag}: {published.top1}" for tag, published in
                     model_entry(name).weights.items() if tag != best_tag)


def mobilenetv4_files(peer_python, folder):
    """{kind: bytes} of MobileNetV4-conv-S from litert-torch, or None without its Python."""
    if peer_python is None:
        return None
    script = os.path.join(os.path.dirname(os.path.abspath(__file__)), "litert_torch_peers.py")
    paths = {kind: os.path.join(folder, f"mobilenetv4_conv_small_{kind}.tflite")
             for kind in KINDS}
    if not all(os.path.exists(path) for path in paths.values()):
        subprocess.run([peer_python, script, folder], check=True, stdout=subprocess.DEVNULL)
    return {kind: open(path, "rb").read() for kind, path in paths.items()}


def pareto_front(points):
    """Labels of the points (label: (ms, top-1)) that no other point beats on both."""
    return [label for label, (ms, top1) in points.items()
            if not any(other_ms <= ms and other_top1 >= top1 and (other_ms, other_top1) !=
                       (ms, top1) for other_ms, other_top1 in points.values())]


def ghostnet_budgets(points, ours):
    """[(from ms, to ms or None, label)]: the latency budgets in which a GhostNet is the most
    accurate model that fits (the front between its latency and the next front point's)."""
    front = sorted(pareto_front(points), key=lambda label: points[label][0])
    budgets = []
    for index, label in enumerate(front):
        if label in ours:
            end = points[front[index + 1]][0] if index + 1 < len(front) else None
            budgets.append((points[label][0], end, label))
    return budgets


def plot(path, top1, latency, ours):
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    figure, axes = plt.subplots(1, len(THREADS), figsize=(6.5 * len(THREADS), 5.2),
                                sharey=True)
    for axis, threads in zip(axes, THREADS):
        for kind, marker in zip(KINDS, ("o", "s")):
            points = {label: (latency[label, kind, threads], top1[label]) for label in top1}
            front = sorted(pareto_front(points), key=lambda label: points[label][0])
            axis.plot([points[label][0] for label in front], [points[label][1] for label in front],
                      "--" if kind == "int8" else "-", color="0.6", zorder=1,
                      label=f"Pareto front, {kind}")
            for label, (ms, accuracy) in points.items():
                color = "tab:red" if label in ours else "tab:blue"
                axis.scatter(ms, accuracy, marker=marker, zorder=2,
                             facecolors=color if kind == "float32" else "none",
                             edgecolors=color)
                if kind == "float32":
                    axis.annotate(label, (ms, accuracy), textcoords="offset points",
                                  xytext=(4, 4), fontsize=7)
        axis.scatter([], [], marker="o", color="tab:red", label="GhostNet (this library)")
        axis.scatter([], [], marker="o", color="tab:blue", label="peers")
        axis.scatter([], [], marker="s", facecolors="none", edgecolors="k",
                     label="int8 (top-1 of the float weights)")
        axis.set_xlabel(f"LiteRT latency, ms (median; XNNPACK, {threads} thread"
                        f"{'s' if threads > 1 else ''}, 224x224)")
        axis.grid(alpha=0.3)
        axis.legend(fontsize=7, loc="lower right")
    axes[0].set_ylabel("ImageNet top-1, % (published)")
    figure.suptitle("Accuracy per millisecond on this CPU: float32 (filled) and int8 (open)")
    figure.tight_layout()
    figure.savefig(path + ".part.png", dpi=110)
    os.replace(path + ".part.png", path)


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--runs", type=int, default=200, help="timed calls per model and round")
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--files-dir", help="keep the converted files here, and time those "
                                            "already there instead of converting again")
    parser.add_argument("--peer-python", help="Python with timm and litert-torch, for "
                                              "MobileNetV4-conv-S")
    parser.add_argument("--plot", help="write the chart to this PNG")
    parser.add_argument("--json", help="write the GhostNets' median latencies to this file")
    args = parser.parse_args()
    if len(os.sched_getaffinity(0) & {0, 1}) < 2:
        raise SystemExit("accuracy_latency.py pins itself to cores 0 and 1: run it where both "
                         "are allowed (no taskset to a single core).")

    import keras
    from timing import timed_interleaved
    from tflite_latency import (SIZE, application_files, cpu_description, ghostnet_files,
                                kept_files, litert_runner)

    ours = ghostnet_rows()
    top1 = {label: accuracy for label, (_, accuracy, _) in ours.items()}
    with tempfile.TemporaryDirectory() as work_dir:
        builders = {label: (lambda name=name: ghostnet_files(name, KINDS))
                    for label, (name, _, _) in ours.items()}
        for label, (constructor, kwargs, accuracy, _) in KERAS_PEERS.items():
            builders[label] = lambda c=constructor, k=kwargs: application_files(
                getattr(keras.applications, c)(input_shape=(SIZE, SIZE, 3), weights=None, **k),
                KINDS, work_dir)
            top1[label] = accuracy
        files = {label: kept_files(label, build, KINDS, args.files_dir)
                 for label, build in builders.items()}
        mobilenetv4 = mobilenetv4_files(args.peer_python, args.files_dir or work_dir)
    if mobilenetv4 is None:
        print("(no MobileNetV4-conv-S row: give --peer-python, a Python with timm and "
              "litert-torch)\n")
    else:
        files[MOBILENETV4[0]] = mobilenetv4
        top1[MOBILENETV4[0]] = MOBILENETV4[1]

    runners = {}
    for threads in THREADS:
        # The interpreters' worker threads keep the cores they were made on.
        os.sched_setaffinity(0, set(range(threads)))
        runners[threads] = {(label, kind): litert_runner(content, threads)
                            for label, contents in files.items()
                            for kind, content in contents.items()}
    rounds = []
    for _ in range(args.rounds):
        measured = {}
        for threads in THREADS:
            os.sched_setaffinity(0, set(range(threads)))
            for (label, kind), values in timed_interleaved(runners[threads], args.runs).items():
                measured[label, kind, threads] = [1000 * value for value in values]
        rounds.append(measured)
    os.sched_setaffinity(0, {0, 1})
    keys = list(rounds[0])
    minimum = {key: min(min(r[key]) for r in rounds) for key in keys}
    median = {key: statistics.median(statistics.median(r[key]) for r in rounds) for key in keys}

    print(f"LiteRT (ai_edge_litert, XNNPACK), {SIZE}x{SIZE}, batch 1; {args.runs} calls per "
          f"model per round, {args.rounds} rounds (min of all calls / median of the rounds' "
          f"medians); 1 thread on core 0, 2 threads on cores 0-1; {cpu_description()}\n")
    print("| model | top-1 (published) | " + " | ".join(
        f"{kind} {threads}T ms" for threads in THREADS for kind in KINDS) +
        " | size float32 / int8 (MB) |")
    print("| --- | ---: |" + " ---: |" * (len(THREADS) * len(KINDS)) + " ---: |")
    for label in sorted(files, key=lambda label: median[label, "float32", 1]):
        others = other_weights(*ours[label][::2]) if label in ours else ""
        source = (f"{ours[label][2]} weights{'; ' + others if others else ''}" if label in ours else
                  KERAS_PEERS[label][3] if label in KERAS_PEERS else MOBILENETV4[2])
        cells = " | ".join(f"{minimum[label, kind, threads]:.2f} / "
                           f"{median[label, kind, threads]:.2f}"
                           for threads in THREADS for kind in KINDS)
        sizes = " / ".join(f"{len(files[label][kind]) / 2**20:.1f}" for kind in KINDS)
        print(f"| {label}{' (ours)' if label in ours else ''} | {top1[label]} ({source}) | "
              f"{cells} | {sizes} |")

    print("\n| ratio of medians (lower: the first is faster) | " +
          " | ".join(f"round {i + 1}" for i in range(args.rounds)) + " | every round |")
    print("| --- |" + " ---: |" * args.rounds + " --- |")
    for subject, reference in COMPARISONS:
        if subject not in files or reference not in files:
            continue
        for threads in THREADS:
            for kind in KINDS:
                ratios = [statistics.median(r[subject, kind, threads]) /
                          statistics.median(r[reference, kind, threads]) for r in rounds]
                verdict = ("faster" if max(ratios) < 1 else "slower" if min(ratios) > 1
                           else "mixed")
                print(f"| {subject} / {reference}, {kind} {threads}T | " +
                      " | ".join(f"{ratio:.2f}" for ratio in ratios) + f" | {verdict} |")

    print("\nPareto front (published top-1 against median latency) and the budgets at which a "
          "GhostNet is the most accurate model that fits:")
    for threads in THREADS:
        for kind in KINDS:
            points = {label: (median[label, kind, threads], top1[label]) for label in files}
            front = sorted(pareto_front(points), key=lambda label: points[label][0])
            budgets = ghostnet_budgets(points, ours)
            wins = "; ".join(f"{label} from {start:.2f} ms" +
                             (f" to {end:.2f} ms" if end else " up") for start, end, label in
                             budgets) or "none"
            print(f"- {kind}, {threads} thread(s): front " +
                  " < ".join(f"{label} ({points[label][0]:.2f} ms, {points[label][1]})"
                             for label in front) + f". GhostNet best: {wins}.")
    if args.plot:
        plot(args.plot, top1, median, ours)
        print(f"\nchart: {args.plot}")
    if args.json:
        write_latency_json(args, median, ours, cpu_description())
        print(f"latencies: {args.json}")
    return 0


def write_latency_json(args, median, ours, cpu):
    """{"measured": when, where and how; "median_ms": {model: {kind: {threads: ms}}}} of the
    GhostNets, as `ghostnet-presets --latency` reads it."""
    import datetime

    from tflite_latency import SIZE

    from ghostnet_tf.atomic import write_json

    measured = (f"{datetime.date.today().isoformat()}, benchmarks/accuracy_latency.py "
                f"--runs {args.runs} --rounds {args.rounds}: LiteRT (XNNPACK) at {SIZE}x{SIZE}, "
                f"median of the rounds' medians; {cpu}")
    write_json(args.json, {"measured": measured, "median_ms": {
        name: {kind: {str(threads): round(median[label, kind, threads], 2)
                      for threads in THREADS} for kind in KINDS}
        for label, (name, _, _) in ours.items()}})


if __name__ == "__main__":
    sys.exit(main())
