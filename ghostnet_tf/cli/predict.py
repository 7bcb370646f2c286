"""`predict.py` / `ghostnet-predict`: the top-5 classes of single images."""
import argparse
import os
import sys

# Small-image models (CIFAR, MNIST) see whole images; larger ones a center crop, as in eval.
SMALL_IMAGE_SIZE = 64


def build_parser():
    parser = argparse.ArgumentParser(
        prog="predict.py",
        description="Print the top-5 classes, with their names, of each image.")
    parser.add_argument("images", nargs="+", metavar="IMAGE", help="JPEG, PNG, BMP or GIF files")
    parser.add_argument("--model", required=True,
                        help="a .keras file, a .weights.h5 file with --arch, a SavedModel "
                             "folder or a .tflite file")
    parser.add_argument("--arch", help="model name for a .weights.h5 file (e.g. ghostnet_100)")
    parser.add_argument("--classes", type=int, help="number of classes of a .weights.h5 file "
                                                    "(default: the architecture's)")
    parser.add_argument("--labels", help="class names, one per line (default: labels.txt "
                                         "beside the model, or the ImageNet names for 1000 "
                                         "classes)")
    parser.add_argument("--crop-pct", type=float,
                        help="resize the short side to size / crop-pct, then center-crop "
                             f"(default 0.875; 1.0 for models under {SMALL_IMAGE_SIZE} px)")
    parser.add_argument("--top", type=int, default=5, help="how many classes to print")
    return parser


def read_labels(path, flag="--labels"):
    if not os.path.isfile(path):
        raise ValueError(f"{flag} {path}: no such file.")
    with open(path, encoding="utf-8") as file:
        names = [line.strip() for line in file if line.strip()]
    if not names:
        raise ValueError(f"{flag} {path} has no class names (one per line expected).")
    return names


def class_names_for(model_path, labels_path, num_classes):
    """Names from --labels, else labels.txt beside the model, else ImageNet's for 1000
    classes, else "class N"."""
    beside = os.path.join(os.path.dirname(os.path.abspath(model_path.rstrip("/"))), "labels.txt")
    if labels_path is None and os.path.isfile(beside):
        labels_path = beside
    if labels_path is not None:
        names = read_labels(labels_path)
        if len(names) != num_classes:
            raise ValueError(f"--labels {labels_path} has {len(names)} names but the model has "
                             f"{num_classes} classes.")
        return names
    if num_classes == 1000:
        from ghostnet_tf.imagenet import IMAGENET_CLASSES
        return list(IMAGENET_CLASSES)
    return [f"class {index}" for index in range(num_classes)]


def load_image(path, input_shape, crop_pct):
    """The image at `path` as the model sees it: float32 [0, 255], center-cropped."""
    import tensorflow as tf

    from ghostnet_tf.data.pipelines import decode_eval_image, image_is_valid

    if not os.path.isfile(path):
        raise ValueError(f"IMAGE {path}: no such file.")
    contents = tf.io.read_file(path)
    if not bool(image_is_valid(contents)):
        raise ValueError(f"IMAGE {path} is not a complete JPEG, PNG, BMP or GIF image.")
    height, width, channels = input_shape
    if crop_pct is None:
        crop_pct = 1.0 if height < SMALL_IMAGE_SIZE else 0.875
    image = decode_eval_image(contents, height, channels=channels, crop_pct=crop_pct)
    return image.numpy().astype("float32")


def predict_images(model_path, image_paths, arch=None, classes=None, labels=None,
                   crop_pct=None, top=5):
    """[(image path, [(class name, probability), ...])] for each image."""
    import numpy as np

    from ghostnet_tf.cli.eval import load_predictor

    info = None
    if model_path.endswith(".weights.h5"):
        info = argparse.Namespace(num_classes=classes, image_shape=None)
    predict, input_shape = load_predictor(model_path, arch, info)
    if None in input_shape:
        input_shape = (224, 224, input_shape[-1])
    images = np.stack([load_image(path, input_shape, crop_pct) for path in image_paths])
    probabilities = np.asarray(predict(images))
    names = class_names_for(model_path, labels, probabilities.shape[1])
    results = []
    for path, row in zip(image_paths, probabilities):
        best = np.argsort(-row)[:top]
        results.append((path, [(names[index], float(row[index])) for index in best]))
    return results


def main(argv=None):
    args = build_parser().parse_args(argv)
    if args.top < 1:
        print(f"predict.py: error: --top must be a positive integer, got {args.top}.",
              file=sys.stderr)
        return 2
    try:
        results = predict_images(args.model, args.images, args.arch, args.classes,
                                 args.labels, args.crop_pct, args.top)
    except (ValueError, FileNotFoundError) as error:
        print(f"predict.py: error: {error}", file=sys.stderr)
        return 2
    for path, ranked in results:
        print(path)
        for name, probability in ranked:
            print(f"  {probability:7.2%}  {name}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
