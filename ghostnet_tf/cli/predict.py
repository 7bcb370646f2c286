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


def predict_images(model, images, arch=None, classes=None, labels=None, interpolation=None,
                   crop_pct=None, top=5):
    """[(image path, [(class name, probability), ...])] for each image, best first."""
    import numpy as np

    from ghostnet_tf.loading import load_predictor, read_image
    from ghostnet_tf.models.registry import default_input_shape

    predictor = load_predictor(model, arch, classes=classes, labels=labels)
    input_shape = default_input_shape(predictor.model_name, predictor.input_shape)
    transform = predictor.eval_transform.overridden(interpolation, crop_pct)
    batch = np.stack([read_image(path, input_shape, transform) for path in images])
    probabilities = np.asarray(predictor(batch))
    names = predictor.class_names or [f"class {index}" for index in range(predictor.num_classes)]
    return [(path, [(names[index], float(row[index])) for index in np.argsort(-row)[:top]])
            for path, row in zip(images, probabilities)]


def run(args):
    for path, ranked in predict_images(args.model, args.images, args.arch, args.classes,
                                       args.labels, args.interpolation, args.crop_pct,
                                       args.top):
        print(path)
        for name, probability in ranked:
            print(f"  {probability:7.2%}  {name}")
    return 0


def main(argv=None):
    common.quiet_tensorflow()
    args = build_parser().parse_args(argv)
    return common.run("predict.py", run, args)


if __name__ == "__main__":
    sys.exit(main())
