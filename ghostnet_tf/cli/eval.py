"""`eval.py` / `ghostnet-eval`: top-1/top-5 of a trained model on a validation set."""
import argparse
import sys

from ghostnet_tf.cli import common


def build_parser():
    from ghostnet_tf.loading import RUNTIMES

    parser = argparse.ArgumentParser(
        prog="eval.py",
        description="Top-1/top-5, loss, per-class accuracy and speed of a model on a "
                    "validation set; writes them as JSON, and a confusion-matrix PNG for up "
                    "to 100 classes.")
    common.add_model_arguments(parser)
    common.add_dataset_arguments(parser, required=True)
    parser.add_argument("--split", default="test", choices=("test", "train"))
    parser.add_argument("--batch-size", type=common.positive_int, default=256)
    parser.add_argument("--limit", type=common.positive_int,
                        help="evaluate the first N images only")
    common.add_eval_transform_arguments(parser)
    parser.add_argument("--runtime", default="litert", choices=RUNTIMES,
                        help="what runs a .tflite: the LiteRT interpreter, or MediaPipe's "
                             "ImageClassifier as a phone app runs it (pip install mediapipe); "
                             "an .onnx: ONNX Runtime (the default) or OpenVINO in float32 "
                             "(pip install openvino)")
    parser.add_argument("--output", help="JSON file (default: next to the model, .eval.json)")
    return parser


def run(args):
    from ghostnet_tf.evaluation import evaluate

    result, info, written = evaluate(
        args.model, common.data_source(args), args.split, arch=args.arch,
        batch_size=args.batch_size, limit=args.limit, output=args.output,
        runtime=args.runtime)
    print(f"{info.name} {args.split}: {result.images} images, top-1 {result.top1:.4f}, "
          f"top-5 {result.top5:.4f}, loss {result.loss:.4f}, "
          f"{result.images_per_second:.0f} images/s")
    if len(info.class_names) <= 20:
        for name, accuracy in zip(info.class_names, result.per_class_accuracy):
            print(f"  {name:<20} {accuracy:.4f}")
    print(f"written: {', '.join(written)}")
    return 0


def main(argv=None):
    common.start_backend("eval.py")
    args = build_parser().parse_args(argv)
    return common.run("eval.py", run, args, {"output": "--output", "runtime": "--runtime"})


if __name__ == "__main__":
    sys.exit(main())
