"""Tiny datasets written in the exact formats of the real ones, for the tests."""
import gzip
import io
import os
import pickle
import tarfile

import numpy as np
import tensorflow as tf

RNG = np.random.default_rng(7)


def write_cifar(root, name="cifar10", per_batch=6, archive=True, learnable=False):
    """cifar-10-python.tar.gz (or the extracted folder) with `per_batch` images per batch.
    `learnable`: four classes whose images differ in colour, which any model learns fast."""
    folder = "cifar-10-batches-py" if name == "cifar10" else "cifar-100-python"
    label_key = b"labels" if name == "cifar10" else b"fine_labels"
    classes = 10 if name == "cifar10" else 100
    members = ([f"data_batch_{i}" for i in range(1, 6)] + ["test_batch"]
               if name == "cifar10" else ["train", "test"])
    contents, expected = {}, {}
    for member in members:
        data = RNG.integers(0, 256, (per_batch, 3072), dtype=np.uint8)
        labels = [int(v) for v in RNG.integers(0, 4 if learnable else classes, per_batch)]
        if learnable:
            images = RNG.integers(0, 60, (per_batch, 3, 32, 32))
            for image, label in zip(images, labels):
                image[label % 3] += 120 + 60 * (label // 3)
            data = images.reshape(per_batch, 3072).astype(np.uint8)
        contents[member] = pickle.dumps({b"data": data, label_key: labels})
        expected[member] = (data.reshape(-1, 3, 32, 32).transpose(0, 2, 3, 1), labels)
    if name == "cifar100":
        names = [f"class_{i}".encode() for i in range(100)]
        contents["meta"] = pickle.dumps({b"fine_label_names": names})
    if archive:
        path = os.path.join(root, "cifar-10-python.tar.gz" if name == "cifar10"
                            else "cifar-100-python.tar.gz")
        with tarfile.open(path, "w:gz") as tar:
            for member, data in contents.items():
                info = tarfile.TarInfo(f"{folder}/{member}")
                info.size = len(data)
                tar.addfile(info, io.BytesIO(data))
    else:
        path = os.path.join(root, folder)
        os.makedirs(path)
        for member, data in contents.items():
            with open(os.path.join(path, member), "wb") as handle:
                handle.write(data)
    return path, expected


def write_idx(root, count=12, split="train"):
    """Fashion-MNIST-style gzip IDX files; returns (images, labels)."""
    prefix = "train" if split == "train" else "t10k"
    images = RNG.integers(0, 256, (count, 28, 28), dtype=np.uint8)
    labels = RNG.integers(0, 10, count).astype(np.uint8)
    with gzip.open(os.path.join(root, f"{prefix}-images-idx3-ubyte.gz"), "wb") as handle:
        handle.write(bytes([0, 0, 8, 3]) + b"".join(
            n.to_bytes(4, "big") for n in images.shape) + images.tobytes())
    with gzip.open(os.path.join(root, f"{prefix}-labels-idx1-ubyte.gz"), "wb") as handle:
        handle.write(bytes([0, 0, 8, 1]) + count.to_bytes(4, "big") + labels.tobytes())
    return images, labels


def class_image(label, size=(48, 64)):
    """A flat-colour image whose colour encodes its class, so labels can be checked after
    decoding, cropping and resizing."""
    image = np.zeros(size + (3,), np.uint8)
    image[..., label % 3] = 60 + 60 * (label // 3)
    return image


def jpeg_bytes(image):
    return tf.io.encode_jpeg(image, quality=95).numpy()


def label_of_image(image):
    """Invert `class_image` on a decoded (float) image."""
    means = np.asarray(image).reshape(-1, 3).mean(axis=0)
    channel = int(means.argmax())
    return channel + 3 * int(round((means[channel] - 60) / 60))


def write_image_folder(root, classes=("n01", "n02", "n03"), per_class=3, split="train"):
    for label, name in enumerate(classes):
        folder = os.path.join(root, split, name)
        os.makedirs(folder)
        for i in range(per_class):
            with open(os.path.join(folder, f"{name}_{i}.JPEG"), "wb") as handle:
                handle.write(jpeg_bytes(class_image(label)))
    return os.path.join(root, split)


def write_tfrecords(root, classes=3, per_shard=4, shards=2, split="train", one_based=True):
    """Shards as TensorFlow's ImageNet build scripts write them: labels 1..classes (0 was
    reserved for background) and a WordNet-style ID per class; `one_based=False` writes
    0-based labels and no IDs, as other writers do. Returns the 0-based classes written."""
    labels = []
    for shard in range(shards):
        path = os.path.join(root, f"{split}-{shard:05d}-of-{shards:05d}")
        with tf.io.TFRecordWriter(path) as writer:
            for i in range(per_shard):
                label = (shard * per_shard + i) % classes
                labels.append(label)
                feature = {
                    "image/encoded": tf.train.Feature(
                        bytes_list=tf.train.BytesList(value=[jpeg_bytes(class_image(label))])),
                    "image/class/label": tf.train.Feature(
                        int64_list=tf.train.Int64List(value=[label + int(one_based)])),
                }
                if one_based:
                    feature["image/class/synset"] = tf.train.Feature(
                        bytes_list=tf.train.BytesList(value=[f"n{label:08d}".encode()]))
                writer.write(tf.train.Example(
                    features=tf.train.Features(feature=feature)).SerializeToString())
    return labels
