"""Top-1/top-5 evaluation of any predictor on a validation set.

A predictor is a function from a batch of float32 [0, 255] images (numpy) to class
probabilities (numpy), so a Keras model, a SavedModel and a LiteRT interpreter are evaluated
by the same code (`evaluate_predictor`). `evaluate` does the whole of eval.py: load any model
file, prepare the dataset as the model expects, score, write the report.
"""
import dataclasses
import os
import time

import numpy as np

from ghostnet_tf.atomic import write_atomically, write_json
from ghostnet_tf.checks import ArgumentError, first_line


@dataclasses.dataclass
class Evaluation:
    images: int
    top1: float
    top5: float
    loss: float  # mean cross-entropy of the probabilities
    per_class_accuracy: list
    confusion: list  # confusion[true][predicted]
    images_per_second: float  # the predictor's own speed, input pipeline excluded

    def to_dict(self):
        return dataclasses.asdict(self)


def evaluate_predictor(predict, batches, num_classes, limit=None):
    """Run `predict` over `batches` of (images, labels) and score it.

    Args:
        predict: numpy images (N, H, W, C) -> numpy probabilities (N, num_classes).
        batches: iterable of (images, labels), labels as class indices or one-hot.
        num_classes: number of classes.
        limit: stop after this many images.
    """
    confusion = np.zeros((num_classes, num_classes), dtype=np.int64)
    top5_hits = count = 0
    loss_sum = seconds = 0.0
    for images, labels in batches:
        images, labels = np.asarray(images, dtype=np.float32), np.asarray(labels)
        if labels.ndim == 2:
            labels = labels.argmax(axis=1)
        if limit is not None:
            images, labels = images[: limit - count], labels[: limit - count]
        start = time.perf_counter()
        probabilities = np.asarray(predict(images), dtype=np.float64)
        seconds += time.perf_counter() - start
        if probabilities.shape != (len(images), num_classes):
            raise ValueError(f"The model gives outputs of shape {probabilities.shape}, "
                             f"expected ({len(images)}, {num_classes}): does it have "
                             f"{num_classes} classes?")
        np.add.at(confusion, (labels, probabilities.argmax(axis=1)), 1)
        top5 = np.argsort(-probabilities, axis=1)[:, :5]
        top5_hits += int((top5 == labels[:, None]).any(axis=1).sum())
        picked = probabilities[np.arange(len(labels)), labels]
        loss_sum += float(-np.log(np.clip(picked, 1e-12, 1.0)).sum())
        count += len(labels)
        if limit is not None and count >= limit:
            break
    if count == 0:
        raise ValueError("The validation set gave no images.")
    per_class = confusion.diagonal() / np.maximum(confusion.sum(axis=1), 1)
    return Evaluation(
        images=count, top1=float(confusion.trace() / count), top5=top5_hits / count,
        loss=loss_sum / count, per_class_accuracy=[float(a) for a in per_class],
        confusion=confusion.tolist(), images_per_second=count / max(seconds, 1e-9))


def save_confusion_png(confusion, class_names, path):
    """The confusion matrix (rows: true class, columns: predicted), normalized per row."""
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    matrix = np.asarray(confusion, dtype=np.float64)
    matrix = matrix / np.maximum(matrix.sum(axis=1, keepdims=True), 1)
    size = max(4.0, 0.35 * len(class_names) + 2)
    figure, axis = plt.subplots(figsize=(size + 1, size))
    image = axis.imshow(matrix, cmap="Blues", vmin=0, vmax=1)
    ticks = range(len(class_names))
    axis.set_xticks(ticks, class_names, rotation=90, fontsize=7)
    axis.set_yticks(ticks, class_names, fontsize=7)
    axis.set_xlabel("predicted")
    axis.set_ylabel("true")
    figure.colorbar(image, ax=axis, fraction=0.046)
    figure.tight_layout()
    write_atomically(path, lambda temporary: figure.savefig(temporary, dpi=100, format="png"))
    plt.close(figure)


def evaluate(model, source, split="test", arch=None, batch_size=256, limit=None, output=None,
             runtime="litert"):
    """Evaluate the model file `model` on `split` of `source` (a `DataSource`, or a dataset
    name) and write the report.

    `model` is anything `ghostnet_tf.loading.load_predictor` reads (a `.weights.h5` file needs
    `arch`, and is built for the dataset's classes and image shape). Image files are resized
    and cropped to the model's input by its evaluation transform (its registry entry's, with
    the source's `interpolation` and `crop_pct` over it). Writes `output` (default:
    `<model>.eval.json`) and, for up to 100 classes, a confusion-matrix PNG beside it. A
    corrupt image file stops with an error naming it, or is skipped with the source's
    `skip_corrupt`. `runtime` runs a `.tflite` ("litert" or "mediapipe", see
    `load_predictor`).

    Returns (Evaluation, DatasetInfo, [paths written]).
    """
    from ghostnet_tf.data import make_dataset
    from ghostnet_tf.data.source import DataSource
    from ghostnet_tf.loading import check_model_path, load_predictor, model_stem
    from ghostnet_tf.weights import WEIGHTS_SUFFIX
    from ghostnet_tf.models import registry

    source = DataSource.of(source)
    path = os.fspath(model)
    check_model_path(path)
    predictor = None
    if path.endswith(WEIGHTS_SUFFIX):
        # Weights alone: the dataset sets the classes and image shape of the model to build.
        if arch is None:
            raise ArgumentError("arch", f"is needed: {path} holds weights only; give its "
                                        f"model name, one of {', '.join(registry.list_models())}.")
        entry = registry.model_entry(arch, argument="arch")
        input_shape, transform = entry.input_shape, entry.eval_transform
    else:
        predictor = load_predictor(path, runtime=runtime)
        input_shape, transform = predictor.input_shape, predictor.eval_transform
    transform = source.eval_transform(transform)  # the source's overrides, once
    data, info = make_dataset(source, split, batch_size=batch_size, training=False,
                              image_size=input_shape[0], eval_transform=transform,
                              array_shape=source.array_shape_for(input_shape))
    if predictor is None:
        predictor = load_predictor(path, arch, classes=info.num_classes,
                                   input_shape=info.image_shape)
    check_input_fits(predictor, info)
    result = evaluate_predictor(predictor, numpy_batches(data), info.num_classes, limit=limit)
    output = os.fspath(output or f"{model_stem(path)}.eval.json")
    report = {"model": path, "runtime": predictor.runtime, "dataset": source.name,
              "split": split,
              "eval_transform": dataclasses.asdict(transform),
              "class_names": list(info.class_names), **result.to_dict()}
    write_json(output, report)
    written = [output]
    if info.num_classes <= 100:
        written.append(os.path.splitext(output)[0] + ".confusion.png")
        save_confusion_png(result.confusion, info.class_names, written[-1])
    return result, info, written


def numpy_batches(dataset):
    """(images, labels) numpy batches of a tf.data dataset of `make_dataset`; a corrupt image
    file ends the iteration with a one-line error naming it."""
    from ghostnet_tf.data.images import corrupt_images_explained

    with corrupt_images_explained():
        for images, labels in dataset:
            yield images.numpy(), labels.numpy()


def check_input_fits(predictor, info):
    """An error naming both shapes when the dataset's images do not fit the model's input."""
    shape, given = tuple(predictor.input_shape), tuple(info.image_shape)
    if given[-1] == 1 and shape[-1] == 3:
        given = given[:-1] + (3,)  # grayscale images are given to RGB models as R = G = B
    if None not in shape and shape != given:
        from ghostnet_tf.data.files import ARRAY_DATASETS

        hint = ("; --resize-arrays (resize_arrays=True in Python) gives them the model's shape"
                if info.name in ARRAY_DATASETS else "")
        raise ArgumentError("model", f"{predictor.source} takes images of shape {shape} but "
                                     f"dataset {info.name} gives {tuple(info.image_shape)}"
                                     f"{hint}.")


def predict_images(model, images, arch=None, classes=None, labels=None, interpolation=None,
                   crop_pct=None, top=5):
    """For each image, best first: (image path, [(class name, probability), ...], None),
    or (image path, None, the problem) for a file that is missing or no image, so that one
    bad file does not stop the others."""
    from ghostnet_tf.loading import load_predictor, read_image
    from ghostnet_tf.models.registry import default_input_shape

    predictor = load_predictor(model, arch, classes=classes, labels=labels)
    input_shape = default_input_shape(predictor.model_name, predictor.input_shape)
    transform = predictor.eval_transform.overridden(interpolation, crop_pct)
    names = predictor.class_names or [f"class {index}" for index in range(predictor.num_classes)]
    import tensorflow as tf

    read, problems = {}, {}
    for path in images:
        try:
            read[path] = read_image(path, input_shape, transform)
        except ArgumentError as error:
            problems[path] = error.problem
        except tf.errors.OpError as error:  # passed the quick check, fails to decode
            problems[path] = f"{path} cannot be decoded: {first_line(error)}"
    ranked = {}
    if read:
        rows = np.asarray(predictor(np.stack(list(read.values()))))
        ranked = {path: [(names[index], float(row[index])) for index in np.argsort(-row)[:top]]
                  for path, row in zip(read, rows)}
    return [(path, ranked.get(path), problems.get(path)) for path in images]
