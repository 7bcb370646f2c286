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
                        help="a .keras file, or a .weights.h5 file with --arch")
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

    if not os.path.isfile(path):
        raise ValueError(f"--model {path}: no such file.")
    if path.endswith(".keras"):
        try:
            return keras.saving.load_model(path, compile=False)
        except Exception as error:  # Keras raises several kinds for unreadable files
            raise ValueError(f"--model {path} is not a readable .keras file: {error}") from None
    if path.endswith(".weights.h5"):
        if arch not in MODELS:
            raise ValueError(f"--model {path} holds weights only: give --arch, one of "
                             f"{', '.join(MODELS)}.")
        model = get_model(arch, classes=info.num_classes, input_shape=info.image_shape)
        load_model_weights(model, path)
        return model
    raise ValueError(f"--model {path}: expected a .keras file, or a .weights.h5 file with "
                     "--arch.")


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
    import keras

    from ghostnet_tf.atomic import write_json
    from ghostnet_tf.data import make_dataset
    from ghostnet_tf.evaluation import evaluate_predictor, save_confusion_png

    image_size = None
    model = None
    if args.model.endswith(".keras"):
        # Image-file datasets are cropped to the model's own input size.
        model = load_keras_model(args.model, args.arch, None)
        image_size = model.input_shape[1]
    dataset, info = make_dataset(
        args.dataset, args.split, data_dir=args.data_dir, batch_size=args.batch_size,
        training=False, image_size=image_size, crop_pct=args.crop_pct,
        labels_file=args.labels_file)
    if model is None:
        model = load_keras_model(args.model, args.arch, info)
    expected = tuple(model.input_shape[1:])
    if None not in expected and expected != tuple(info.image_shape):
        raise ValueError(f"--model {args.model} takes images of shape {expected} but "
                         f"--dataset {args.dataset} gives {tuple(info.image_shape)}.")

    def predict(images):
        return keras.ops.convert_to_numpy(model(images, training=False))

    batches = ((images.numpy(), labels.numpy()) for images, labels in dataset)
    result = evaluate_predictor(predict, batches, info.num_classes, limit=args.limit)
    stem = args.model[: -len(".weights.h5")] if args.model.endswith(".weights.h5") \
        else os.path.splitext(args.model)[0]
    output = args.output or f"{stem}.eval.json"
    report = {"model": args.model, "dataset": args.dataset, "split": args.split,
              "class_names": list(info.class_names), **result.to_dict()}
    write_json(output, report)
    if info.num_classes <= 100:
        png = os.path.splitext(output)[0] + ".confusion.png"
        save_confusion_png(result.confusion, info.class_names, png)
        output = f"{output}, {png}"
    return result, info, output


if __name__ == "__main__":
    sys.exit(main())
