"""Quantization-aware training against post-training int8, on trained runs.

    python benchmarks/qat_accuracy.py --data-dir /usr/share/datasets/fashion-mnist \
        --calibration-images 1 \
        --start checkpoints/fashion_mnist_ghostnetv2_100_seed{0,1} \
        --fine-tuned checkpoints/fashion_mnist_ghostnetv2_100_seed{0,1}_ft_none \
        --qat checkpoints/fashion_mnist_ghostnetv2_100_seed{0,1}_ft_int8

For each seed, three runs: `--start` (a trained float run), `--fine-tuned` (the same run
fine-tuned in float on the QAT run's schedule: the control for the extra training) and
`--qat` (fine-tuned with `training.quantize`). The float runs are exported to full int8 as
export.py does with `--calibration-images` and `--per-tensor` (the post-training setting
being measured), into <run>/ptq_<setting>/; the QAT run to its int8 file with the same
calibration images (which give ranges only to the few tensors it does not round). Every file
and the QAT run's simulated model (its best.keras in Keras) is evaluated on the whole test
split, as eval.py does. The table gives each seed, and the mean with the spread
(max - min) of each change.
"""
import argparse
import os
import sys

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

from ghostnet_tf.data.source import DataSource  # noqa: E402
from ghostnet_tf.evaluation import evaluate  # noqa: E402  (what eval.py runs)
from ghostnet_tf.export import ExportOptions, export_model_file  # noqa: E402


def exported_top1(run, source, formats, calibration_images, per_channel, setting):
    """{format: test top-1} of `run`'s best.keras exported to `formats` in <run>/ptq_<setting>."""
    report, _ = export_model_file(os.path.join(run, "best.keras"),
                                  os.path.join(run, f"ptq_{setting}"), formats, source=source,
                                  calibration_images=calibration_images, replace=True,
                                  options=ExportOptions(per_channel=per_channel))
    top1 = {}
    for kind in formats:
        path = report["exports"][kind]["path"]
        top1[kind] = evaluate(path, source, output=path + ".eval.json")[0].top1
    return top1


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--start", nargs="+", required=True, help="trained float runs")
    parser.add_argument("--fine-tuned", nargs="+", required=True,
                        help="the same runs fine-tuned in float (the control)")
    parser.add_argument("--qat", nargs="+", required=True,
                        help="the same runs fine-tuned with training.quantize")
    parser.add_argument("--dataset", default="fashion_mnist")
    parser.add_argument("--data-dir")
    parser.add_argument("--calibration-images", type=int, default=1000)
    parser.add_argument("--per-tensor", action="store_true",
                        help="one weight scale per tensor in the post-training files")
    args = parser.parse_args()
    if not len(args.start) == len(args.fine_tuned) == len(args.qat):
        parser.error("--start, --fine-tuned and --qat need one run per seed each")

    source = DataSource(args.dataset, args.data_dir, resize_arrays=True)
    setting = f"{'per_tensor' if args.per_tensor else 'per_channel'}_cal{args.calibration_images}"
    ptq = dict(calibration_images=args.calibration_images, per_channel=not args.per_tensor,
               setting=setting)
    columns = ("start float32", "start PTQ int8", "fine-tuned float32", "fine-tuned PTQ int8",
               "QAT simulated", "QAT int8")
    rows = []
    for start, fine_tuned, qat in zip(args.start, args.fine_tuned, args.qat):
        first = exported_top1(start, source, ["float32", "int8"], **ptq)
        control = exported_top1(fine_tuned, source, ["float32", "int8"], **ptq)
        aware = exported_top1(qat, source, ["int8"], **ptq)
        simulated = evaluate(os.path.join(qat, "best.keras"), source,
                             output=os.path.join(qat, "best.keras.eval.json"))[0].top1
        rows.append((os.path.basename(os.path.normpath(start)),
                     dict(zip(columns, (first["float32"], first["int8"], control["float32"],
                                        control["int8"], simulated, aware["int8"])))))
        print(f"{start}: {rows[-1][1]}", flush=True)

    # Changes in points against the start run's float32 file.
    changes = ("start PTQ int8", "fine-tuned PTQ int8", "QAT int8")

    def change(top1, column):
        return 100 * (top1[column] - top1["start float32"])

    print(f"\nPost-training setting: {setting}. Changes in points against the start float32.")
    print("\n| run | " + " | ".join(columns) + " | " + " | ".join(
        f"{column} change" for column in changes) + " |")
    print("| --- |" + " ---: |" * (len(columns) + len(changes)))
    for name, top1 in rows:
        print(f"| {name} | " + " | ".join(f"{top1[c]:.2%}" for c in columns) + " | "
              + " | ".join(f"{change(top1, c):+.2f}" for c in changes) + " |")
    if len(rows) > 1:
        mean = {c: sum(top1[c] for _, top1 in rows) / len(rows) for c in columns}
        spread = {c: max(change(t, c) for _, t in rows) - min(change(t, c) for _, t in rows)
                  for c in changes}
        print(f"| mean of {len(rows)} | " + " | ".join(f"{mean[c]:.2%}" for c in columns)
              + " | " + " | ".join(f"{change(mean, c):+.2f} (spread {spread[c]:.2f})"
                                   for c in changes) + " |")
    return 0


if __name__ == "__main__":
    sys.exit(main())
