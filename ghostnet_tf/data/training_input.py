"""The input of a training run on either backend: an endless stream of training batches from
any step on, and the validation batches.

TensorFlow reads through the tf.data pipelines (`make_dataset`); other backends (JAX) read the
small datasets as numpy arrays (`ghostnet_tf.data.batches`). The trainer fills one
`TrainingInput` from the recipe's data.* keys; nothing here reads a recipe.
"""
import dataclasses
from typing import Optional

from ghostnet_tf.checks import ArgumentError
from ghostnet_tf.data import batches, files
from ghostnet_tf.data.source import DataSource

# Augmentations that only the tf.data pipelines apply (fields of `Augmentation`).
TF_DATA_AUGMENTATIONS = ("randaugment_magnitude", "random_erasing", "mixup_alpha", "cutmix")


def tf_data_only(augmentation):
    """The augmentations on in `augmentation` that the numpy batches cannot apply."""
    return [key for key in TF_DATA_AUGMENTATIONS if getattr(augmentation, key)]


@dataclasses.dataclass(frozen=True)
class TrainingInput:
    """Everything that decides the batches of a run."""
    source: DataSource  # or the name "synthetic": random in-memory batches
    global_batch: int
    validation_batch: int  # global
    image_size: int  # of image-file datasets
    eval_transform: object  # an EvalTransform, with the source's overrides
    augmentation: object  # an Augmentation (tf.data only)
    seed: int  # of the data order and augmentation
    classes: int  # of synthetic data (the model's)
    min_scale: float = 0.08
    shuffle_buffer: int = 10_000
    deterministic: bool = False
    validation_limit: Optional[int] = None  # batches
    one_hot: bool = False  # one-hot labels (label smoothing, MixUp, CutMix)
    array_shape: Optional[tuple] = None  # given to the array datasets' images (make_dataset)


def training_data(spec, tensorflow=True):
    """(stream, validation data, DatasetInfo) of `spec` (a `TrainingInput`), as tf.data
    datasets (`tensorflow`) or numpy batches.

    The training stream is a function of the step to start from, `stream(start_step,
    steps_per_epoch)`, giving the batches of the endless sequence of shuffled, augmented
    passes from that step on: a resumed run reads the batches that the uninterrupted run
    reads from that step, exactly so with `deterministic` (the pipeline's random draws then
    come in a fixed order). On tf.data the batches before the start are computed and dropped
    (the input pipeline outruns the model many times over: a few percent of the time already
    trained); the numpy stream draws each pass from (seed, pass)."""
    if spec.source == "synthetic":
        return _synthetic_data(spec, tensorflow)
    return (_tf_data if tensorflow else _numpy_data)(spec)


def _numpy_data(spec):
    import keras

    name = spec.source.name
    if name not in files.ARRAY_DATASETS:
        raise ArgumentError("name", f"{name!r}: the {keras.backend.backend()} backend trains "
                                    f"from numpy arrays of {', '.join(files.ARRAY_DATASETS)} "
                                    "only.")
    refused = tf_data_only(spec.augmentation)
    if refused:
        key = refused[0]
        raise ArgumentError(key, f"is {getattr(spec.augmentation, key)}: the "
                                 f"{keras.backend.backend()} backend's numpy batches have the "
                                 "pad-crop-flip augmentation only; train with the TensorFlow "
                                 "backend, or set it to 0.")
    if spec.array_shape is not None:
        raise ArgumentError("image_size", f"is {spec.array_shape[0]}: the "
                                          f"{keras.backend.backend()} backend's numpy batches "
                                          f"keep {name}'s own size; train with the TensorFlow "
                                          "backend, or leave it unset.")
    images, labels, info = files.load_arrays(name, "train", spec.source.data_dir)
    test_images, test_labels, _ = files.load_arrays(name, "test", spec.source.data_dir)
    classes = info.num_classes if spec.one_hot else None

    def numpy_stream(start_step, steps_per_epoch):
        return batches.TrainingStream(images, labels, spec.global_batch, spec.seed,
                                      start_step, steps_per_epoch, classes)
    if spec.validation_limit:
        kept = spec.validation_limit * spec.validation_batch
        test_images, test_labels = test_images[:kept], test_labels[:kept]
    return (numpy_stream,
            batches.ArrayBatches(test_images, test_labels, spec.validation_batch, classes),
            info)


def _tf_data(spec):
    import tensorflow as tf

    from ghostnet_tf.data.pipelines import make_dataset

    def training_pass():
        return make_dataset(
            spec.source, "train", batch_size=spec.global_batch, image_size=spec.image_size,
            min_scale=spec.min_scale, augmentation=spec.augmentation,
            shuffle_buffer=spec.shuffle_buffer, seed=spec.seed,
            deterministic=spec.deterministic, array_shape=spec.array_shape)
    unread, info = training_pass()  # listing an image folder can take a while: used once
    validation, _ = make_dataset(
        spec.source.replace(class_names=info.class_names), "test",
        batch_size=spec.validation_batch, image_size=spec.image_size,
        eval_transform=spec.eval_transform, seed=spec.seed, array_shape=spec.array_shape)
    classes = info.num_classes

    def with_one_hot(dataset):
        if not spec.one_hot:
            return dataset
        return dataset.map(lambda x, y: (x, tf.one_hot(y, classes) if y.dtype.is_integer else y))
    if spec.validation_limit:
        validation = validation.take(spec.validation_limit)

    def stream(start_step, steps_per_epoch):
        # A pipeline no iterator has read yet: a dataset's reshuffling state is shared by its
        # iterators, so a second fit session must not reuse the first one's.
        nonlocal unread
        train, unread = unread or training_pass()[0], None
        return with_one_hot(train).repeat().skip(start_step)
    return stream, with_one_hot(validation), info


def _synthetic_data(spec, tensorflow):
    """Random in-memory batches (the model's speed, free of input cost)."""
    shape, classes = (spec.image_size, spec.image_size, 3), spec.classes
    info = files.DatasetInfo("synthetic", "train", classes, tuple(map(str, range(classes))),
                             spec.global_batch * 10, shape)
    images, labels = batches.synthetic_arrays(shape, classes, spec.global_batch, spec.seed)
    if spec.one_hot:
        labels = batches.one_hot(labels, classes)
    if tensorflow:
        import tensorflow as tf

        batch = tf.data.Dataset.from_tensors((images, labels))
        return (lambda start_step, steps_per_epoch: batch.repeat()), batch.take(1), info
    return ((lambda start_step, steps_per_epoch: batches.RepeatedBatch(images, labels, 10)),
            batches.RepeatedBatch(images, labels, 1), info)
