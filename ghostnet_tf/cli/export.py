"""`export.py` / `ghostnet-export`: SavedModel and TFLite files of a trained model, each
checked against the Keras model on real images."""
import argparse
import os
import sys


def build_parser():
    from ghostnet_tf.export import FORMATS

    parser = argparse.ArgumentParser(
        prog="export.py",
        description="Export a Keras model to a SavedModel (uint8 images in, probabilities "
                    "out) and to TFLite float32, float16, dynamic-range int8 and full int8; "
                    "check each against the Keras model on images of --dataset.")
    parser.add_argument("--model", required=True,
                        help="a .keras file, or a .weights.h5 file with --arch")
    parser.add_argument("--arch", help="model name for a .weights.h5 file (e.g. ghost_resnet56)")
    parser.add_argument("-o", "--output-dir",
                        help="where to write (default: <model>_export beside the model)")
    parser.add_argument("--formats", default=",".join(FORMATS),
                        help=f"comma-separated, some of {','.join(FORMATS)} (default: all)")
    parser.add_argument("--dataset", help="calibration (train split) and check (test split) "
                                          "images: cifar10, fashion_mnist, folder, tfds:NAME, ...")
    parser.add_argument("--data-dir", help="where the dataset's files are")
    parser.add_argument("--labels-file", help="labels of a flat validation folder")
    parser.add_argument("--calibration-images", type=int, default=1000,
                        help="train images for int8 calibration, every class represented")
    parser.add_argument("--check-images", type=int, default=1000,
                        help="test images on which each export is compared with Keras")
    parser.add_argument("--int8-io", default="int8", choices=("int8", "uint8"),
                        help="input and output type of the full-int8 model")
    parser.add_argument("--float-ops", action="append", default=[], metavar="NAME",
                        help="full int8: keep ops in float (repeatable): an op type such as "
                             "DEPTHWISE_CONV_2D, or an op's output tensor name (listed in "
                             "model_float32.tflite.ops.txt); the model then has float I/O")
    parser.add_argument("--per-tensor", action="store_true",
                        help="full int8: one weight scale per tensor instead of per channel")
    parser.add_argument("--crop-pct", type=float, default=0.875,
                        help="image files: resize the short side to size / crop-pct, then crop")
    return parser


def _dataset(args, split, image_size=None):
    """Evaluation-preprocessed images of `split` in a fixed shuffled order (image folders
    are sorted by class), and the DatasetInfo."""
    from ghostnet_tf.data import make_dataset

    return make_dataset(
        args.dataset, split, data_dir=args.data_dir, batch_size=64, training=False,
        shuffle=True, seed=0, image_size=image_size, crop_pct=args.crop_pct,
        labels_file=args.labels_file)


def _first_images(dataset, count):
    """The first `count` images of `dataset`."""
    import numpy as np

    batches = [images.numpy() for images, _ in dataset.take(-(-count // 64))]
    return np.concatenate(batches)[:count]


def _calibration_images(dataset, count, num_classes):
    """`count` images of `dataset`, every class represented."""
    from ghostnet_tf.export import balanced_images

    batches = ((images.numpy(), labels.numpy()) for images, labels in dataset)
    return balanced_images(batches, num_classes, count)


def run(args):
    from ghostnet_tf.cli.eval import load_keras_model, model_stem
    from ghostnet_tf.export import export

    formats = [f.strip() for f in args.formats.split(",") if f.strip()]
    if not os.path.exists(args.model):
        raise ValueError(f"--model {args.model}: no such file.")
    if not args.model.endswith((".keras", ".weights.h5")):
        raise ValueError(f"--model {args.model}: expected a .keras file, or a .weights.h5 "
                         "file with --arch.")
    if "int8" in formats and not args.dataset:
        raise ValueError("--formats int8 needs calibration images: give --dataset (and "
                         "--data-dir); its train split is used.")
    if args.model.endswith(".weights.h5") and not args.dataset:
        raise ValueError(f"--model {args.model} holds weights only: give --arch and "
                         "--dataset, which set the classes and the input size.")
    # Weights alone: the dataset sets the classes and input size of the model to build.
    info = _dataset(args, "test")[1] if args.model.endswith(".weights.h5") else None
    model = load_keras_model(args.model, args.arch, info)
    calibration = check = class_names = None
    if args.dataset:
        # Image files are cropped to the model's input size.
        image_size = model.input_shape[1]
        test_set, info = _dataset(args, "test", image_size)
        class_names = info.class_names
        if tuple(model.input_shape[1:]) != tuple(info.image_shape):
            raise ValueError(f"--model {args.model} takes images of shape "
                             f"{tuple(model.input_shape[1:])} but --dataset {args.dataset} "
                             f"gives {tuple(info.image_shape)}.")
        check = _first_images(test_set, args.check_images) if args.check_images else None
        if "int8" in formats:
            train_set, _ = _dataset(args, "train", image_size)
            calibration = _calibration_images(train_set, args.calibration_images,
                                              info.num_classes)
    else:
        print("export.py: no --dataset, so the exports are not checked against the model.",
              file=sys.stderr)
    output_dir = args.output_dir or f"{model_stem(args.model)}_export"
    return export(model, output_dir, formats, class_names=class_names,
                  calibration_images=calibration, check_images=check, int8_io=args.int8_io,
                  float_ops=args.float_ops, per_channel=not args.per_tensor), output_dir


def main(argv=None):
    args = build_parser().parse_args(argv)
    for flag, value in (("--calibration-images", args.calibration_images),
                        ("--check-images", args.check_images)):
        if value < 0:
            print(f"export.py: error: {flag} must be 0 or more, got {value}.", file=sys.stderr)
            return 2
    try:
        report, output_dir = run(args)
    except (ValueError, FileNotFoundError) as error:
        print(f"export.py: error: {error}", file=sys.stderr)
        return 2
    from ghostnet_tf.export import FLOAT_AGREEMENT_GOAL, describe
    print(describe(report))
    print(f"written: {os.path.join(output_dir, 'export.json')}")
    missed = [kind for kind, entry in report["exports"].items()
              if not entry.get("check", {}).get("meets_float_goal", True)]
    if missed:
        print(f"export.py: error: {', '.join(missed)} agree with the Keras model on fewer than "
              f"{FLOAT_AGREEMENT_GOAL:.1%} of the check images (see export.json).",
              file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
