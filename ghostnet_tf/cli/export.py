"""`export.py` / `ghostnet-export`: SavedModel, TFLite and ONNX files of a trained model,
each checked against the Keras model on real images."""
import argparse
import os
import sys

from ghostnet_tf.cli import common


def build_parser():
    from ghostnet_tf.export import FORMATS, KNOWN_FORMATS
    from ghostnet_tf.export_rewrites import REWRITES

    parser = argparse.ArgumentParser(
        prog="export.py",
        description="Export a Keras model to a SavedModel (uint8 images in, probabilities "
                    "out), to TFLite float32, float16, dynamic-range int8 and full int8, and "
                    "on request to ONNX float32 and int8; check each against the Keras "
                    "model on images of --dataset.")
    common.add_model_arguments(parser, kinds="a .keras file, or a .weights.h5 file with --arch")
    parser.add_argument("-o", "--output-dir",
                        help="where to write (default: <model>_export beside the model)")
    parser.add_argument("--replace", action="store_true",
                        help="the output folder holds an export of another model: replace "
                             "it (its files are removed; files it did not write stay). An "
                             "export of the same model keeps the formats not exported again")
    parser.add_argument("--formats", default=",".join(FORMATS),
                        help=f"comma-separated, some of {','.join(KNOWN_FORMATS)} (default: "
                             f"{','.join(FORMATS)}; onnx and onnx_int8 need the onnx extra)")
    common.add_dataset_arguments(parser, required=False,
                                 help_suffix=": calibration (train split) and check (test "
                                             "split) images")
    parser.add_argument("--calibration-images", type=common.non_negative_int, default=1000,
                        help="train images for int8 calibration, every class represented")
    parser.add_argument("--check-images", type=common.non_negative_int, default=1000,
                        help="test images on which each export is compared with Keras")
    parser.add_argument("--int8-io", default="uint8", choices=("uint8", "int8"),
                        help="input and output type of the full-int8 model (default uint8: "
                             "pixels as they are, what MediaPipe takes)")
    parser.add_argument("--rewrites", default=",".join(REWRITES),
                        help="exact graph rewrites for the .tflite files, comma-separated, "
                             f"some of {','.join(REWRITES)} (default: all), or none")
    parser.add_argument("--float-ops", action="append", default=[], metavar="NAME",
                        help="full int8: keep ops in float (repeatable): an op type such as "
                             "DEPTHWISE_CONV_2D, or an op's output tensor name (listed in "
                             "model_float32.tflite.ops.txt); the model then has float I/O")
    parser.add_argument("--onnx-layout", default="nhwc", choices=("nhwc", "nchw"),
                        help="input layout of the .onnx files (default nhwc, as the other "
                             "files; the network inside is NCHW either way)")
    parser.add_argument("--per-tensor", action="store_true",
                        help="full int8: one weight scale per tensor instead of per channel")
    common.add_eval_transform_arguments(parser)
    return parser


def _names(text):
    """The names of a comma-separated flag; "none" for none."""
    names = [name.strip() for name in text.split(",") if name.strip()]
    return [] if names == ["none"] else names


def run(args):
    from ghostnet_tf.export import (FLOAT_AGREEMENT_GOAL, ExportOptions, describe,
                                    describe_int8, export_model_file)

    if not args.dataset:
        print("export.py: no --dataset, so the exports are not checked against the model.",
              file=sys.stderr)
    with common.progress_display("export.py") as progress:
        report, output_dir = export_model_file(
            args.model, args.output_dir, _names(args.formats),
            source=common.data_source(args) if args.dataset else None, arch=args.arch,
            calibration_images=args.calibration_images, check_images=args.check_images,
            options=ExportOptions(int8_io=args.int8_io, float_ops=args.float_ops,
                                  per_channel=not args.per_tensor,
                                  rewrites=_names(args.rewrites),
                                  onnx_layout=args.onnx_layout),
            replace=args.replace, progress=progress)
    print(describe(report))
    print(f"written: {os.path.join(output_dir, 'export.json')}")
    advice = describe_int8(report)
    if advice:
        print(advice)
    missed = [kind for kind, entry in report["exports"].items()
              if not entry.get("check", {}).get("meets_float_goal", True)]
    if missed:
        print(f"export.py: error: {', '.join(missed)} agree with the Keras model on fewer than "
              f"{FLOAT_AGREEMENT_GOAL:.1%} of the check images (see export.json).",
              file=sys.stderr)
        return 1
    return 0


def main(argv=None):
    common.start_backend("export.py")
    args = build_parser().parse_args(argv)
    return common.run("export.py", run, args, {
        "formats": "--formats", "calibration_images": "--calibration-images",
        "source": "--dataset", "int8_io": "--int8-io", "output_dir": "--output-dir",
        "rewrites": "--rewrites", "replace": "--replace"})


if __name__ == "__main__":
    sys.exit(main())
