"""`eval.py` / `ghostnet-eval`: top-1/top-5 of a trained model on a validation set."""
import argparse
import os
import sys


def build_parser():
    parser = argparse.ArgumentParser(
        prog="eval.py",
        description="Top-1/top-5, loss, per-class accuracy and speed of a model on a "
                    "validation set; writes them as JSON, and a confusion-matrix PNG for up "
                    "to 100 classes.")
    parser.add_argument("--model", required=True,
                        help="a .keras file, a .weights.h5 file with --arch, a SavedModel folder "
                             "or a .tflite file")
    parser.add_argument("--arch", help="model name for a .weights.h5 file (e.g. ghost_resnet56)")
    parser.add_argument("--dataset", required=True,
                        help="cifar10, cifar100, mnist, fashion_mnist, folder/imagenet, tfds:NAME")
    parser.add_argument("--data-dir", help="where the dataset's files are")
    parser.add_argument("--labels-file", help="labels of a flat validation folder")
    parser.add_argument("--split", default="test", choices=("test", "train"))
    parser.add_argument("--batch-size", type=int, default=256)
    parser.add_argument("--limit", type=int, help="evaluate the first N images only")
    parser.add_argument("--crop-pct", type=float, default=0.875,
                        help="image files: resize the short side to size / crop-pct, then crop")
    parser.add_argument("--output", help="JSON file (default: next to the model, .eval.json)")
    return parser


def load_keras_model(path, arch, info):
    """A .keras file, or a .weights.h5 file loaded into `arch` built for the dataset."""
    import keras

    import ghostnet_tf.layers  # noqa: F401  registers the custom layers
    from ghostnet_tf.models import MODELS, get_model
    from ghostnet_tf.models.ghostnet import load_model_weights

    if path.endswith(".keras"):
        try:
            return keras.saving.load_model(path, compile=False)
        except Exception as error:  # Keras raises several kinds for unreadable files
            raise ValueError(f"--model {path} is not a readable .keras file: {error}") from None
    if arch not in MODELS:
        raise ValueError(f"--model {path} holds weights only: give --arch, one of "
                         f"{', '.join(MODELS)}.")
    size = {"classes": info.num_classes} if info.num_classes else {}
    if info.image_shape and None not in info.image_shape:
        size["input_shape"] = tuple(info.image_shape)
    model = get_model(arch, **size)
    load_model_weights(model, path)
    return model


def needs_dataset_info(path):
    """Whether the model at `path` can only be built once the dataset is known."""
    return path.endswith(".weights.h5")


def load_predictor(path, arch=None, info=None):
    """(predict, input shape) of any model file: predict maps float32 [0, 255] images
    (numpy) to probabilities (numpy).

    `path` is a .keras file, a .weights.h5 file with `arch` (built for `info`, the dataset's
    DatasetInfo), a SavedModel folder, or a .tflite file.
    """
    from ghostnet_tf.export import TFLitePredictor, load_saved_model_predictor

    if os.path.isdir(path):
        predict = load_saved_model_predictor(path)
        return predict, predict.input_shape
    if not os.path.isfile(path):
        raise ValueError(f"--model {path}: no such file or folder.")
    if path.endswith(".tflite"):
        predict = TFLitePredictor(path)
        return predict, predict.input_shape
    if not path.endswith((".keras", ".weights.h5")):
        raise ValueError(f"--model {path}: expected a .keras file, a .weights.h5 file with "
                         "--arch, a SavedModel folder or a .tflite file.")
    import keras
    model = load_keras_model(path, arch, info)

    def predict(images):
        return keras.ops.convert_to_numpy(model(images, training=False))

    return predict, tuple(model.input_shape[1:])


def main(argv=None):
    args = build_parser().parse_args(argv)
    for flag, value in (("--batch-size", args.batch_size), ("--limit", args.limit)):
        if value is not None and value < 1:
            print(f"eval.py: error: {flag} must be a positive integer, got {value}.",
                  file=sys.stderr)
            return 2
    try:
        result, info, output = run(args)
    except (ValueError, FileNotFoundError) as error:
        print(f"eval.py: error: {error}", file=sys.stderr)
        return 2
    print(f"{info.name} {args.split}: {result.images} images, top-1 {result.top1:.4f}, "
          f"top-5 {result.top5:.4f}, loss {result.loss:.4f}, "
          f"{result.images_per_second:.0f} images/s")
    if len(info.class_names) <= 20:
        for name, accuracy in zip(info.class_names, result.per_class_accuracy):
            print(f"  {name:<20} {accuracy:.4f}")
    print(f"written: {output}")
    return 0


def run(args):
    from ghostnet_tf.atomic import write_json
    from ghostnet_tf.data import make_dataset
    from ghostnet_tf.evaluation import evaluate_predictor, save_confusion_png

    image_size = predict = None
    if not needs_dataset_info(args.model):
        # Image-file datasets are cropped to the model's own input size.
        predict, input_shape = load_predictor(args.model)
        image_size = input_shape[0]
    dataset, info = make_dataset(
        args.dataset, args.split, data_dir=args.data_dir, batch_size=args.batch_size,
        training=False, image_size=image_size, crop_pct=args.crop_pct,
        labels_file=args.labels_file)
    if predict is None:
        predict, input_shape = load_predictor(args.model, args.arch, info)
    if None not in input_shape and tuple(input_shape) != tuple(info.image_shape):
        raise ValueError(f"--model {args.model} takes images of shape {tuple(input_shape)} "
                         f"but --dataset {args.dataset} gives {tuple(info.image_shape)}.")

    batches = ((images.numpy(), labels.numpy()) for images, labels in dataset)
    result = evaluate_predictor(predict, batches, info.num_classes, limit=args.limit)
    output = args.output or f"{model_stem(args.model)}.eval.json"
    report = {"model": args.model, "dataset": args.dataset, "split": args.split,
              "class_names": list(info.class_names), **result.to_dict()}
    write_json(output, report)
    if info.num_classes <= 100:
        png = os.path.splitext(output)[0] + ".confusion.png"
        save_confusion_png(result.confusion, info.class_names, png)
        output = f"{output}, {png}"
    return result, info, output


def model_stem(path):
    """`path` without its extension (.weights.h5 counted whole), for files written beside it."""
    path = path.rstrip("/")
    if path.endswith(".weights.h5"):
        return path[: -len(".weights.h5")]
    return os.path.splitext(path)[0]


if __name__ == "__main__":
    sys.exit(main())
