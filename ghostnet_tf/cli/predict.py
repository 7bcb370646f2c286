"""`predict.py` / `ghostnet-predict`: the top-5 classes of single images."""
import argparse
import sys

from ghostnet_tf.cli import common


def build_parser():
    parser = argparse.ArgumentParser(
        prog="predict.py",
        description="Print the top-5 classes, with their names, of each image.")
    parser.add_argument("images", nargs="+", metavar="IMAGE", help="JPEG, PNG, BMP or GIF files")
    common.add_model_arguments(parser)
    parser.add_argument("--classes", type=common.positive_int,
                        help="number of classes of a .weights.h5 file (default: the "
                             "architecture's)")
    parser.add_argument("--labels", help="class names, one per line (default: labels.txt "
                                         "beside the model, or the ImageNet names for 1000 "
                                         "classes)")
    common.add_eval_transform_arguments(parser)
    parser.add_argument("--top", type=common.positive_int, default=5,
                        help="how many classes to print")
    return parser


def run(args):
    from ghostnet_tf.evaluation import predict_images

    failed = 0
    for path, ranked, problem in predict_images(args.model, args.images, args.arch,
                                                args.classes, args.labels, args.interpolation,
                                                args.crop_pct, args.top):
        if problem is not None:  # said, and the other images still predicted
            print(f"predict.py: error: {problem}", file=sys.stderr)
            failed += 1
            continue
        print(path)
        for name, probability in ranked:
            print(f"  {probability:7.2%}  {name}")
    return 0 if not failed else (2 if failed == len(args.images) else 1)


def main(argv=None):
    common.start_backend("predict.py")
    args = build_parser().parse_args(argv)
    return common.run("predict.py", run, args)


if __name__ == "__main__":
    sys.exit(main())
