"""Test accuracy of every export of a model, each evaluated as eval.py does, in one table.

    python benchmarks/export_accuracy.py --model checkpoints/RUN/best.keras \
        --dataset fashion_mnist --data-dir /usr/share/datasets/fashion-mnist

Exports with export.py's defaults (1000 calibration images, every class), and ONNX float32
and int8 (the onnx extra), into <model>_export/, then evaluates the Keras model and each
export on the whole test split, the `.tflite` files twice: in the LiteRT interpreter and in
MediaPipe's ImageClassifier (the phone-side client; needs `pip install mediapipe`, skipped
with --no-mediapipe); the `.onnx` files in ONNX Runtime.
"""
import argparse
import os
import sys

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

from ghostnet_tf.data.source import DataSource  # noqa: E402
from ghostnet_tf.evaluation import evaluate  # noqa: E402  (what eval.py runs)
from ghostnet_tf.export import (  # noqa: E402
    KNOWN_FORMATS,
    ExportOptions,
    default_output_dir,
    export_model_file,
)


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--model", required=True, help="a .keras file")
    parser.add_argument("--dataset", required=True)
    parser.add_argument("--data-dir")
    parser.add_argument("-o", "--output-dir")
    parser.add_argument("--per-tensor", action="store_true", help="int8 with per-tensor weights")
    parser.add_argument("--no-mediapipe", action="store_true",
                        help="leave out the MediaPipe rows")
    parser.add_argument("--formats", default=",".join(KNOWN_FORMATS))
    parser.add_argument("--float-ops", action="append", default=[],
                        help="int8 ops kept in float (see export.py --float-ops)")
    args = parser.parse_args()

    output_dir = args.output_dir or default_output_dir(args.model)
    source = DataSource(args.dataset, args.data_dir)
    report, _ = export_model_file(args.model, output_dir, args.formats.split(","),
                                  source=source, options=ExportOptions(
                                      float_ops=args.float_ops,
                                      per_channel=not args.per_tensor))
    targets = [("keras", args.model, None, "litert")] + [
        (kind, entry["path"], entry.get("bytes"), "litert")
        for kind, entry in report["exports"].items()]
    if not args.no_mediapipe:
        targets += [(f"{kind} in MediaPipe", entry["path"], entry["bytes"], "mediapipe")
                    for kind, entry in report["exports"].items()
                    if entry["path"].endswith(".tflite")]
    rows = []
    for kind, path, size, runtime in targets:
        output = os.path.join(output_dir, f"{kind.replace(' ', '_')}.eval.json")
        result, _, _ = evaluate(path, source, output=output, runtime=runtime)
        rows.append((kind, size, result.top1, result.top5))
    keras_top1 = rows[0][2]
    print("\n| export | size (MB) | test top-1 | test top-5 | top-1 vs Keras |")
    print("| --- | ---: | ---: | ---: | ---: |")
    for kind, size, top1, top5 in rows:
        megabytes = f"{size / 2**20:.2f}" if size else "-"
        print(f"| {kind} | {megabytes} | {top1:.2%} | {top5:.2%} | "
              f"{100 * (top1 - keras_top1):+.2f} pt |")
    return 0


if __name__ == "__main__":
    sys.exit(main())
