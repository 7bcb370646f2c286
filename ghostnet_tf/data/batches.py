"""Batches of in-memory numpy arrays for Keras `fit`, without TensorFlow: how the JAX backend
trains on the small datasets, and random images to time a model free of input cost."""
import math

import keras
import numpy as np

from ghostnet_tf.data.transforms import PADDING, pad_crop_flip


def synthetic_arrays(image_shape, num_classes, batch_size, seed=0):
    """One batch of uniform [0, 255] float32 images and int64 labels."""
    rng = np.random.default_rng(seed)
    images = rng.uniform(0, 255, (batch_size,) + tuple(image_shape)).astype("float32")
    labels = rng.integers(0, num_classes, batch_size).astype("int64")
    return images, labels


def one_hot(labels, num_classes):
    return np.eye(num_classes, dtype="float32")[labels]


class ArrayBatches(keras.utils.PyDataset):
    """Evaluation batches of in-memory arrays, in order; labels one-hot when `num_classes`
    is given."""

    def __init__(self, images, labels, batch_size, num_classes=None):
        super().__init__()
        self.images, self.labels = images, labels
        self.batch_size, self.num_classes = batch_size, num_classes

    def __len__(self):
        return math.ceil(len(self.images) / self.batch_size)

    def __getitem__(self, index):
        chosen = slice(index * self.batch_size, (index + 1) * self.batch_size)
        return _batch(self.images[chosen].astype("float32"), self.labels[chosen],
                      self.num_classes)


class TrainingStream(keras.utils.PyDataset):
    """The training batches of in-memory arrays as a function of the global step: step t is
    batch t % (n // batch_size) of pass t // (n // batch_size), whose order and augmentation
    (the CIFAR transform, `transforms.pad_crop_flip`) are drawn from a generator seeded with
    (seed, pass). So a run resumed at step `start_step` reads the batches the uninterrupted
    run reads from that step on. Each fit epoch is `steps_per_epoch` batches; labels one-hot
    when `num_classes` is given."""

    def __init__(self, images, labels, batch_size, seed, start_step, steps_per_epoch,
                 num_classes=None):
        super().__init__()
        self.images, self.labels = images, labels
        self.batch_size, self.seed, self.num_classes = batch_size, seed, num_classes
        self.start_step, self.steps_per_epoch = start_step, steps_per_epoch
        self.batches_per_pass = len(images) // batch_size
        self.epochs_seen = 0
        self._pass = None  # (pass, order, offsets, flips) of the pass last read

    def __len__(self):
        return self.steps_per_epoch

    def _draws(self, index):
        if self._pass is None or self._pass[0] != index:
            rng = np.random.default_rng((self.seed, index))
            count = len(self.images)
            self._pass = (index, rng.permutation(count),
                          rng.integers(0, 2 * PADDING + 1, (count, 2)), rng.random(count) < 0.5)
        return self._pass[1:]

    def __getitem__(self, index):
        step = self.start_step + self.epochs_seen * self.steps_per_epoch + index
        order, offsets, flips = self._draws(step // self.batches_per_pass)
        first = (step % self.batches_per_pass) * self.batch_size
        chosen = order[first:first + self.batch_size]
        images = np.stack([keras.ops.convert_to_numpy(
            pad_crop_flip(self.images[i].astype("float32"), *offsets[i], flips[i]))
            for i in chosen])
        return _batch(images, self.labels[chosen], self.num_classes)

    def on_epoch_end(self):
        self.epochs_seen += 1


def _batch(images, labels, num_classes):
    return images, (one_hot(labels, num_classes) if num_classes else labels)


class RepeatedBatch(keras.utils.PyDataset):
    """The same (images, labels) batch `length` times: a model's speed without input cost."""

    def __init__(self, images, labels, length):
        super().__init__()
        self.batch, self.length = (images, labels), length

    def __len__(self):
        return self.length

    def __getitem__(self, index):
        return self.batch
