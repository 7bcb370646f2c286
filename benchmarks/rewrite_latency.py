"""What one export rewrite is worth: a model's `.tflite` files with and without it.

    taskset -c 0 python benchmarks/rewrite_latency.py --model ghostnet_130_paddle \
        --rewrite clip_gate_as_relu6 [--runs 200] [--rounds 3] [--threads 1]

Converts the registry model as export.py does (every rewrite of
`ghostnet_tf.export_rewrites.REWRITES`), and again without `--rewrite`, to float32 and full
int8, and times the four files in LiteRT (XNNPACK) at 224x224, batch 1, in turn in each
round (timing.timed_interleaved). Prints min / median latencies, the XNNPACK partitions of
each file, and each round's ratio with / without. Weights and calibration images are
random: latency does not depend on them.
"""
import argparse
import os
import statistics
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

KINDS = ("float32", "int8")


def partitions(content, threads):
    """How many XNNPACK partitions (DELEGATE nodes) the file runs as."""
    from ai_edge_litert.interpreter import Interpreter

    interpreter = Interpreter(model_content=content, num_threads=threads)
    interpreter.allocate_tensors()
    return [op["op_name"] for op in interpreter._get_ops_details()].count("DELEGATE")


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--model", required=True, help="a registry model name")
    parser.add_argument("--rewrite", required=True, help="one of export_rewrites.REWRITES")
    parser.add_argument("--runs", type=int, default=200, help="timed calls per file and round")
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--threads", type=int, default=1)
    args = parser.parse_args()

    from timing import timed_interleaved
    from tflite_latency import SIZE, cpu_description, ghostnet_files, litert_runner

    from ghostnet_tf.export_rewrites import REWRITES

    if args.rewrite not in REWRITES:
        parser.error(f"--rewrite {args.rewrite}: expected one of {', '.join(REWRITES)}")
    files = {"with": ghostnet_files(args.model, KINDS),
             "without": ghostnet_files(args.model, KINDS, rewrites=[
                 name for name in REWRITES if name != args.rewrite])}
    runners = {(form, kind): litert_runner(content, args.threads)
               for form, contents in files.items() for kind, content in contents.items()}
    rounds = [{key: [1000 * value for value in values]
               for key, values in timed_interleaved(runners, args.runs).items()}
              for _ in range(args.rounds)]

    print(f"{args.model}, with and without {args.rewrite}: LiteRT (XNNPACK), {SIZE}x{SIZE}, "
          f"batch 1, {args.threads} thread(s); {args.runs} calls per file per round, "
          f"{args.rounds} rounds (min of all calls / median of the rounds' medians); "
          f"{cpu_description()}\n")
    print("| file | partitions | ms (min / median) |")
    print("| --- | ---: | ---: |")
    for (form, kind) in runners:
        minimum = min(min(r[form, kind]) for r in rounds)
        median = statistics.median(statistics.median(r[form, kind]) for r in rounds)
        print(f"| {kind}, {form} | {partitions(files[form][kind], args.threads)} | "
              f"{minimum:.2f} / {median:.2f} |")
    print("\n| with / without | " + " | ".join(f"round {i + 1}" for i in range(args.rounds))
          + " |")
    print("| --- |" + " ---: |" * args.rounds)
    for kind in KINDS:
        ratios = [statistics.median(r["with", kind]) / statistics.median(r["without", kind])
                  for r in rounds]
        print(f"| {kind} | " + " | ".join(f"{ratio:.2f}" for ratio in ratios) + " |")
    return 0


if __name__ == "__main__":
    sys.exit(main())
