"""Print a Markdown table of finished training runs, from their results.json files.

Usage: python benchmarks/results_table.py checkpoints/<run> [checkpoints/<run> ...]
"""
import json
import os
import sys


def main(run_dirs):
    print("| run | model | params | MACs | test top-1 | test top-5 | best top-1 (epoch) "
          "| steps (epochs) | global batch | wall time | train images/s (validation included) |")
    print("| --- | --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: |")
    for run_dir in run_dirs:
        path = os.path.join(run_dir, "results.json")
        if not os.path.exists(path):
            sys.exit(f"{path}: no such file (is the run finished?)")
        with open(path) as handle:
            r = json.load(handle)
        # Runs of re-parameterizable models (GhostNetV3) are evaluated and counted folded.
        folded = "deploy_params" in r
        params, macs = (r["deploy_params"], r["deploy_macs"]) if folded else (r["params"],
                                                                                r["macs"])
        model = f"{r['model']} (folded)" if folded else r["model"]
        print(f"| {r['run_name']} | {model} | {params:,} | {macs / 1e6:.1f}M | "
              f"{100 * r['top1']:.2f}% | {100 * r['top5']:.2f}% | "
              f"{100 * r['best_top1']:.2f}% ({r['best_epoch']}) | {r['steps']} ({r['epochs']}) | "
              f"{r['global_batch']} | {r['wall_seconds'] / 60:.0f} min | "
              f"{r['images_per_second']:.0f} |")


if __name__ == "__main__":
    if len(sys.argv) < 2:
        sys.exit(__doc__)
    main(sys.argv[1:])
