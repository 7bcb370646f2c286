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
    """Batches of in-memory arrays, augmented when training by the CIFAR transform of
    `ghostnet_tf.data.make_dataset` (`transforms.pad_crop_flip`: zero-pad 4, crop back to
    size at a random place, random horizontal flip). Labels become one-hot when
    `num_classes` is given."""

    def __init__(self, images, labels, batch_size, training, seed, num_classes=None):
        super().__init__()
        self.images, self.labels = images, labels
        self.batch_size, self.training = batch_size, training
        self.num_classes = num_classes
        self.rng = np.random.default_rng(seed)
        self.order = self.rng.permutation(len(images)) if training else np.arange(len(images))

    def __len__(self):
        count = len(self.images) / self.batch_size
        return int(count) if self.training else math.ceil(count)

    def __getitem__(self, index):
        chosen = self.order[index * self.batch_size:(index + 1) * self.batch_size]
        images = self.images[chosen].astype("float32")
        if self.training:
            offsets = self.rng.integers(0, 2 * PADDING + 1, (len(images), 2))
            flips = self.rng.random(len(images)) < 0.5
            images = np.stack([keras.ops.convert_to_numpy(pad_crop_flip(image, y, x, flip))
                               for image, (y, x), flip in zip(images, offsets, flips)])
        labels = self.labels[chosen]
        if self.num_classes:
            labels = one_hot(labels, self.num_classes)
        return images, labels

    def on_epoch_end(self):
        if self.training:
            self.order = self.rng.permutation(len(self.images))


class RepeatedBatch(keras.utils.PyDataset):
    """The same (images, labels) batch `length` times: a model's speed without input cost."""

    def __init__(self, images, labels, length):
        super().__init__()
        self.batch, self.length = (images, labels), length

    def __len__(self):
        return self.length

    def __getitem__(self, index):
        return self.batch
