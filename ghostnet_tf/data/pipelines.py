"""tf.data input pipelines for `train.py`, `eval.py` and the export calibration.

`make_dataset(source, split, ...)` returns a batched `tf.data.Dataset` of (images, labels) and a
`DatasetInfo`. Images are float32 RGB (or grayscale) pixels in [0, 255]: normalization
happens in exactly one place, the model's preprocessing layer. Labels are int64 class
indices, or one-hot float32 vectors when MixUp or CutMix is on. The examples come from the
source's reader (`ghostnet_tf.data.readers`); this module batches and augments them.
"""
import dataclasses

import tensorflow as tf

from ghostnet_tf.checks import ArgumentError, check_positive_int
from ghostnet_tf.data import files
from ghostnet_tf.data.batches import synthetic_arrays
from ghostnet_tf.data.eval_transform import DEFAULT_EVAL_TRANSFORM
from ghostnet_tf.data.images import Decoding
from ghostnet_tf.data.readers import Reading, reader_for
from ghostnet_tf.data.source import DataSource
from ghostnet_tf.imagenet import IMAGENET_INPUT_SIZE

AUTOTUNE = tf.data.AUTOTUNE


@dataclasses.dataclass
class Augmentation:
    """Optional augmentations on top of the standard crop and flip; all off by default.

    MixUp and CutMix stay off by default: they hurt compact models such as GhostNet.
    """
    randaugment_magnitude: float = 0.0  # 0 = off; MindCV's GhostNet recipe uses 9 (of 10)
    randaugment_ops: int = 2
    random_erasing: float = 0.0  # probability; MindCV's recipe uses 0.25
    mixup_alpha: float = 0.0
    cutmix: float = 0.0  # Beta-distribution factor of Keras' CutMix; 0 = off

    @property
    def mixes_labels(self):
        return self.mixup_alpha > 0 or self.cutmix > 0


def make_batch_augmenter(augmentation, num_classes, seed=None):
    """Keras core augmentation layers (keras.layers.Pipeline), applied to batches in tf.data.
    Returns None when every augmentation is off."""
    import keras

    image_layers = []
    if augmentation.randaugment_magnitude > 0:
        image_layers.append(keras.layers.RandAugment(
            value_range=(0, 255), num_ops=augmentation.randaugment_ops,
            factor=augmentation.randaugment_magnitude / 10, seed=seed))
    if augmentation.random_erasing > 0:
        image_layers.append(keras.layers.RandomErasing(
            factor=augmentation.random_erasing, value_range=(0, 255), seed=seed))
    mix_layers = []
    if augmentation.mixup_alpha > 0:
        mix_layers.append(keras.layers.MixUp(alpha=augmentation.mixup_alpha, seed=seed))
    if augmentation.cutmix > 0:
        mix_layers.append(keras.layers.CutMix(factor=augmentation.cutmix, seed=seed))
    if not image_layers and not mix_layers:
        return None
    image_pipeline = keras.layers.Pipeline(image_layers) if image_layers else None
    mix_pipeline = keras.layers.Pipeline(mix_layers) if mix_layers else None

    def augment(images, labels):
        if image_pipeline is not None:
            images = image_pipeline(images, training=True)
        if mix_pipeline is not None:
            labels = tf.one_hot(labels, num_classes)
            mixed = mix_pipeline({"images": images, "labels": labels}, training=True)
            images, labels = mixed["images"], mixed["labels"]
        return images, labels
    return augment



def make_dataset(source, split="train", batch_size=128, training=None, image_size=None,
                 eval_transform=None, min_scale=0.08, augmentation=None,
                 shuffle_buffer=10_000, seed=None, deterministic=False, input_context=None,
                 drop_remainder=None, shuffle=None, array_shape=None):
    """A batched, prefetched `tf.data.Dataset` of (images, labels), and its `DatasetInfo`.

    Args:
        source: a `DataSource` (where the data is and how to read it), or a dataset name
            for `DataSource(name)`: "cifar10", "cifar100", "mnist", "fashion_mnist",
            "folder" (or "imagenet"), or "tfds:<name>".
        split: "train" or "test" (the validation split of ImageNet-style datasets).
        batch_size: batch size (per input pipeline, under multi-worker training).
        training: shuffle and augment; defaults to `split == "train"`.
        image_size: output size of image-file datasets (default 224, ImageNet's).
        array_shape: (height, width, channels) given to the images of the array datasets
            (CIFAR, MNIST) after their training transform: resized (bilinear), and
            grayscale as RGB when channels is 3; e.g. (96, 96, 3) trains an ImageNet
            GhostNet on Fashion-MNIST; channels None: their own. None: their own shape.
        eval_transform: how evaluation images of image-file datasets are resized and
            cropped, an `EvalTransform`, used as it is: the caller resolves it once, the
            model's with the source's overrides, `source.eval_transform(model_transform)`
            (default: that of DEFAULT_EVAL_TRANSFORM, bilinear, crop 0.875, i.e. resize the
            short side to image_size / 0.875, then center-crop).
        min_scale: smallest crop area of the training random-resized crop (0.08; the official
            recipe uses 0.49 below width 1.0).
        augmentation: an `Augmentation` (RandAugment, random erasing, MixUp, CutMix).
        shuffle_buffer: bound of the example shuffle buffer.
        seed: random seed of shuffling and augmentation.
        deterministic: reproducible training order (slower); with no seed, seed 0 is used.
            Evaluation always keeps the files' order.
        input_context: a `tf.distribute.InputContext`, to shard per worker.
        drop_remainder: drop the last partial batch; defaults to `training`.
        shuffle: shuffle the examples; defaults to `training`. `training=False,
            shuffle=True` gives evaluation-preprocessed images of every class early on, as
            int8 calibration needs (image folders are sorted by class).
    """
    source = DataSource.of(source)
    training = split == "train" if training is None else training
    drop_remainder = training if drop_remainder is None else drop_remainder
    shuffle = training if shuffle is None else shuffle
    augmentation = augmentation or Augmentation()
    if deterministic and seed is None:
        seed = 0
    check_positive_int("batch_size", batch_size)
    if split not in files.SPLITS:
        raise ArgumentError("split", f"must be one of {files.SPLITS}, got {split!r}.")
    decoding = Decoding(image_size or IMAGENET_INPUT_SIZE,
                        eval_transform or source.eval_transform(DEFAULT_EVAL_TRANSFORM),
                        min_scale, source.skip_corrupt, array_shape)
    read = reader_for(source.name)  # before anything is read: an unknown name says so
    dataset, info = read(source, Reading(split, training, shuffle, seed, shuffle_buffer,
                                         input_context, decoding))

    dataset = dataset.batch(batch_size, drop_remainder=drop_remainder,
                            num_parallel_calls=AUTOTUNE)
    if training:
        if augmentation.mixes_labels and not info.num_classes:
            raise ArgumentError("class_names", "are needed: MixUp and CutMix need the number "
                                               "of classes.")
        augment = make_batch_augmenter(augmentation, info.num_classes, seed)
        if augment is not None:
            dataset = dataset.map(augment, num_parallel_calls=AUTOTUNE)
    options = tf.data.Options()
    # Evaluation keeps the files' order; training trades order for speed unless asked.
    options.deterministic = deterministic or not shuffle
    return dataset.with_options(options).prefetch(AUTOTUNE), info


def make_synthetic_dataset(image_shape, num_classes, batch_size, steps=None, seed=0):
    """One random in-memory batch repeated `steps` times (None: forever): the model's own
    speed, free of any input cost."""
    batch = synthetic_arrays(image_shape, num_classes, batch_size, seed)
    return tf.data.Dataset.from_tensors(batch).repeat(steps)
