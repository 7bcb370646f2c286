"""One reader per kind of source, behind one interface: `read(source, reading)` gives the
(image, label) examples of one split, unbatched, and its `DatasetInfo`.

- the small datasets ("cifar10", "cifar100", "mnist", "fashion_mnist"): their standard files
  (`ghostnet_tf.data.files`), else TFDS when the machine is online;
- "folder" (alias "imagenet"): `data_dir/train/<class>/*.JPEG` and `data_dir/val/...`,
  ImageNet's flat `val/` folder with a labels file, or TFRecord shards
  (`data_dir/train-*-of-*`, `validation-*`) with `image/encoded` and `image/class/label`;
- "tfds:<name>": any dataset of a TFDS data_dir.

`READERS` maps each name to its reader; a new kind of source is one reader and one entry.
"""
import dataclasses
import os
from typing import Optional

import tensorflow as tf

from ghostnet_tf.checks import ArgumentError, check_label_offset
from ghostnet_tf.data import files
from ghostnet_tf.data.files import DatasetInfo
from ghostnet_tf.data.images import Decoding, cast_and_pad_crop_flip, decoded, reshaped_arrays
from ghostnet_tf.network import is_online

AUTOTUNE = tf.data.AUTOTUNE
# Where TFDS downloads each small dataset from: resolved to tell online from offline at once
# (an offline TFDS download otherwise retries for minutes).
_DOWNLOAD_HOSTS = {"cifar10": "www.cs.toronto.edu", "cifar100": "www.cs.toronto.edu",
                   "mnist": "storage.googleapis.com",
                   "fashion_mnist": "fashion-mnist.s3-website.eu-central-1.amazonaws.com"}
IMAGENET_MANUAL_FILES = ("ILSVRC2012_img_train.tar", "ILSVRC2012_img_val.tar")
_CACHE_LIMIT_BYTES = 2 * 1024 ** 3  # TFDS datasets smaller than this are cached decoded


@dataclasses.dataclass(frozen=True)
class Reading:
    """How one split is read, whatever the source: what every reader takes."""
    split: str  # "train" or "test"
    training: bool  # augment (random crops and flips)
    shuffle: bool
    seed: Optional[int]
    shuffle_buffer: int  # bound of the example shuffle buffer (TFRecords, TFDS)
    input_context: object  # a tf.distribute.InputContext, to shard per worker; or None
    decoding: Decoding  # how image files are decoded


# ---------------------------------------------------------------------------- small datasets
def read_arrays(source, reading):
    """A small dataset from its standard files, or through TFDS when none are on disk; in
    `reading.decoding.array_shape` when one is given."""
    try:
        images, labels, info = files.load_arrays(source.name, reading.split, source.data_dir)
    except FileNotFoundError as missing:
        # A data_dir the user gave is the only place looked: no download in its stead.
        if source.data_dir is not None or not (
                source.download and is_online(_DOWNLOAD_HOSTS[source.name])):
            raise FileNotFoundError(str(missing)) from None
        builder = _tfds_builder(source.name, None, download=True)  # TFDS uses the same names
        dataset, info = _tfds_dataset(builder, source.name, reading)
    else:
        dataset = cast_and_pad_crop_flip(_array_dataset(images, labels, reading),
                                         reading.training, reading.seed)
    shape = reading.decoding.array_shape
    if shape is None:
        return dataset, info
    shape = check_array_shape(shape, info)
    if shape == tuple(info.image_shape):
        return dataset, info
    return reshaped_arrays(dataset, shape), dataclasses.replace(info, image_shape=shape)


def check_array_shape(shape, info):
    """`shape` as a tuple, its channels None read as the images' own, after checking that
    `info`'s images can be given it: positive sizes, and 3 channels or the images' own."""
    channels = info.image_shape[-1]
    shape = tuple(shape)
    if len(shape) == 3 and shape[-1] is None:
        shape = shape[:2] + (channels,)
    if (len(shape) != 3 or not all(isinstance(n, int) and n > 0 for n in shape)
            or shape[-1] not in (channels, 3)):
        raise ArgumentError("array_shape", f"must be (height, width, channels) with "
                                           f"{'3' if channels == 3 else '1 or 3'} channels "
                                           f"for {info.name}, got {shape!r}.")
    return shape


def _shard_and_shuffle(dataset, count, reading):
    """This worker's share of `dataset` (under multi-worker training), shuffled whole each
    epoch when `reading.shuffle`: used on lists that hold only indices, paths or shard
    names."""
    if reading.input_context is not None:
        dataset = dataset.shard(reading.input_context.num_input_pipelines,
                                reading.input_context.input_pipeline_id)
    if reading.shuffle:
        dataset = dataset.shuffle(count, seed=reading.seed, reshuffle_each_iteration=True)
    return dataset


def _array_dataset(images, labels, reading):
    """Examples of in-memory arrays, shuffled by index: a full permutation each epoch that
    holds only integers, never a copy of the images."""
    count = len(images)
    indices = _shard_and_shuffle(tf.data.Dataset.range(count), count, reading)
    images, labels = tf.constant(images), tf.constant(labels)
    return indices.map(lambda i: (tf.gather(images, i), tf.gather(labels, i)),
                       num_parallel_calls=AUTOTUNE)


# ---------------------------------------------------------------------------- folders
def read_folder(source, reading):
    """An image folder (class subfolders, or a flat folder with a labels file) or TFRecord
    shards."""
    kind, items, labels, names = _folder_source(source.data_dir, reading.split,
                                                source.labels_file, source.class_names)
    if kind == "files":
        examples = _file_examples(items, labels, reading)
        count = len(items)
    else:
        index = tfrecord_index(items, source.label_offset)
        examples = _tfrecord_examples(items, reading, index["offset"])
        count, names = index["num_examples"], names or index["class_names"]
    dataset = decoded(examples, reading.training, reading.decoding, reading.seed)
    size = reading.decoding.image_size
    return dataset, DatasetInfo(source.name, reading.split, len(names), tuple(names), count,
                                (size, size, 3))


def _file_examples(paths, labels, reading):
    """(file contents, label, path) of image files. File lists are shuffled whole: they are
    only strings, and folders are sorted by class, which a bounded buffer would not undo."""
    dataset = _shard_and_shuffle(tf.data.Dataset.from_tensor_slices((list(paths), labels)),
                                 len(paths), reading)
    return dataset.map(lambda path, label: (tf.io.read_file(path), label, path),
                       num_parallel_calls=AUTOTUNE)


# The features of ImageNet's TFRecords as TensorFlow's build scripts write them
# (build_imagenet_data.py): labels 1..1000 (0 is reserved for background) and WordNet IDs.
_LABEL, _SYNSET = "image/class/label", "image/class/synset"


def tfrecord_index(shards, label_offset="auto"):
    """What a TFRecord split holds: {"num_examples", "offset", "num_classes",
    "class_names"}; labels minus `offset` are 0-based classes.

    `label_offset` "auto" reads the convention from the labels: shards in which no label is
    0 follow the build scripts' 1-based labels (0 was reserved for background); 0 or 1
    forces it. Classes are named by their WordNet IDs (image/class/synset) when the shards
    have them. The labels are read once (minutes for ImageNet's 1.28M training images) and
    the result is cached beside the shards, or in ~/.keras/datasets when that folder is
    read-only.
    """
    check_label_offset(label_offset)
    scanned = _scan_tfrecord_labels(shards)
    if not scanned["num_examples"]:
        raise ArgumentError("data_dir", f"has TFRecord shards with no examples: "
                                        f"{', '.join(shards[:3])}.")
    offset = label_offset if label_offset != "auto" else (0 if scanned["min"] == 0 else 1)
    if scanned["min"] - offset < 0:
        raise ArgumentError("label_offset", f"{offset} does not fit labels from "
                                            f"{scanned['min']}: they would be negative.")
    synsets = scanned["synsets"]  # label (as a string) -> WordNet ID
    num_classes = scanned["max"] - offset + 1
    if synsets and len(synsets) == num_classes:
        names = tuple(synsets[str(label + offset)] for label in range(num_classes))
    else:
        names = tuple(str(label) for label in range(num_classes))
    return {"num_examples": scanned["num_examples"], "offset": offset,
            "num_classes": num_classes, "class_names": names}


def _scan_tfrecord_labels(shards):
    """Count, label range and label -> synset of `shards`, from a cache when it still
    describes them (same names, sizes and times)."""
    import hashlib
    import json

    from ghostnet_tf.atomic import read_json, write_json

    stamp = [[os.path.basename(s), os.path.getsize(s), int(os.path.getmtime(s))] for s in shards]
    key = hashlib.sha1(json.dumps(stamp).encode()).hexdigest()[:16]
    candidates = [os.path.join(os.path.dirname(os.path.abspath(shards[0])),
                               f".ghostnet_tf_index_{key}.json"),
                  os.path.join(files.KERAS_DATASETS_DIR, "tfrecord_index", f"{key}.json")]
    for path in candidates:
        cached = read_json(path)
        if cached and cached.get("stamp") == stamp:
            return cached
    features = {_LABEL: tf.io.FixedLenFeature([], tf.int64),
                _SYNSET: tf.io.FixedLenFeature([], tf.string, default_value=b"")}
    dataset = tf.data.TFRecordDataset(list(shards), num_parallel_reads=AUTOTUNE).map(
        lambda record: tf.io.parse_single_example(record, features),
        num_parallel_calls=AUTOTUNE).batch(4096)
    count, low, high, synsets = 0, None, None, {}
    for batch in dataset:
        labels, names = batch[_LABEL].numpy(), batch[_SYNSET].numpy()
        count += len(labels)
        low = int(labels.min()) if low is None else min(low, int(labels.min()))
        high = int(labels.max()) if high is None else max(high, int(labels.max()))
        for label, name in zip(labels.tolist(), names.tolist()):
            if name:
                synsets[str(label)] = name.decode()
    scanned = {"stamp": stamp, "num_examples": count, "min": low, "max": high,
               "synsets": synsets}
    for path in candidates:
        try:
            os.makedirs(os.path.dirname(path), exist_ok=True)
            write_json(path, scanned)
            break
        except OSError:
            continue  # a read-only folder: try the next place, or scan again next time
    return scanned


def _tfrecord_examples(shards, reading, offset):
    """(encoded image, 0-based label, shard path) from TFRecord shards in ImageNet's
    format; `offset` is subtracted from the stored labels."""
    shuffle, seed = reading.shuffle, reading.seed
    dataset = _shard_and_shuffle(tf.data.Dataset.from_tensor_slices(shards), len(shards),
                                 reading)
    dataset = dataset.interleave(
        lambda shard: tf.data.TFRecordDataset(shard).map(lambda record: (record, shard)),
        cycle_length=min(16, len(shards)), num_parallel_calls=AUTOTUNE)
    if shuffle:
        dataset = dataset.shuffle(reading.shuffle_buffer, seed=seed,
                                  reshuffle_each_iteration=True)
    features = {"image/encoded": tf.io.FixedLenFeature([], tf.string),
                _LABEL: tf.io.FixedLenFeature([], tf.int64)}

    def parse(record, shard):
        example = tf.io.parse_single_example(record, features)
        return example["image/encoded"], example[_LABEL] - offset, shard
    return dataset.map(parse, num_parallel_calls=AUTOTUNE)



def _folder_source(data_dir, split, labels_file, class_names):
    """(kind, paths or shards, labels, class names) of an image-folder or TFRecord dataset."""
    data_dir = os.fspath(data_dir)
    if not os.path.isdir(data_dir):
        raise ArgumentError("data_dir", f"{data_dir} does not exist.")
    split_dirs = ("train",) if split == "train" else ("val", "validation")
    split_dir = next((os.path.join(data_dir, d) for d in split_dirs
                      if os.path.isdir(os.path.join(data_dir, d))), None)
    if split_dir is None:
        shards = files.list_tfrecord_shards(data_dir, split)
        return "tfrecord", shards, None, tuple(class_names or ())
    train_dir = os.path.join(data_dir, "train")
    if class_names is None and os.path.isdir(train_dir) and split_dir != train_dir:
        # Validation labels follow the training classes' order.
        class_names = sorted(e.name for e in os.scandir(train_dir) if e.is_dir())
    has_subfolders = any(entry.is_dir() for entry in os.scandir(split_dir))
    if has_subfolders:
        paths, labels, class_names = files.list_image_folder(split_dir, class_names)
        return "files", paths, labels, class_names
    if labels_file is None:
        raise ArgumentError("labels_file", f"is needed: {split_dir} is a flat folder of "
                                           "images; give a file with one label per image.")
    if not class_names:
        raise ArgumentError("class_names", f"are needed: {split_dir} is a flat folder and "
                                           f"{train_dir} has no <class>/ folders to name them.")
    paths, labels = files.list_flat_folder(split_dir, labels_file, class_names)
    return "files", paths, labels, tuple(class_names)


def _tfds_builder(name, data_dir, download):
    import tensorflow_datasets as tfds

    try:
        builder = tfds.builder(name, data_dir=data_dir)
    except tfds.core.registered.DatasetNotFoundError as error:
        raise ArgumentError("name", f"tfds:{name} is an unknown TFDS dataset, neither "
                                    f"registered nor prepared in {data_dir}: {error}") from None
    if builder.is_prepared():
        return builder
    if name.startswith("imagenet2012"):
        manual_dir = os.path.join(os.fspath(data_dir or tfds.core.constants.DATA_DIR),
                                  "downloads", "manual")
        missing = [f for f in IMAGENET_MANUAL_FILES
                   if not os.path.isfile(os.path.join(manual_dir, f))]
        if missing:
            raise FileNotFoundError(
                f"tfds:{name} is not prepared and its manual download is incomplete: put "
                f"{' and '.join(IMAGENET_MANUAL_FILES)} (from image-net.org) in {manual_dir} "
                f"(missing: {', '.join(missing)}); TFDS then builds the dataset once.")
        builder.download_and_prepare()
        return builder
    if not download:
        raise FileNotFoundError(f"tfds:{name} is not prepared in {builder.data_dir}.")
    builder.download_and_prepare()
    return builder


def _tfds_examples(builder, reading, image_key, label_key):
    """Either decoded (image, label) examples (fixed-size datasets) or (bytes, label, name)."""
    import tensorflow_datasets as tfds

    split, splits = reading.split, builder.info.splits
    tfds_split = split if split in splits else {"test": "validation"}.get(split, split)
    if tfds_split not in splits:
        raise ArgumentError("split", f"{split!r} is not a split of tfds:{builder.name}; it "
                                     f"has {list(splits)}.")
    image_feature = builder.info.features[image_key]
    read_config = tfds.ReadConfig(input_context=reading.input_context,
                                  shuffle_seed=reading.seed)
    fixed_size = None not in image_feature.shape
    decoders = None if fixed_size else {image_key: tfds.decode.SkipDecoding()}
    dataset = builder.as_dataset(split=tfds_split, shuffle_files=reading.shuffle,
                                 decoders=decoders, read_config=read_config)
    dataset = dataset.map(lambda example: (example[image_key], example[label_key]),
                          num_parallel_calls=AUTOTUNE)
    return dataset, fixed_size, splits[tfds_split].num_examples


def read_tfds(source, reading):
    """A dataset of a TFDS data_dir ("tfds:<name>")."""
    builder = _tfds_builder(source.name[len(files.TFDS_PREFIX):], source.data_dir,
                            source.download)
    return _tfds_dataset(builder, source.name, reading)


def _tfds_dataset(builder, name, reading):
    image_key, label_key = builder.info.supervised_keys or ("image", "label")
    dataset, fixed_size, count = _tfds_examples(builder, reading, image_key, label_key)
    class_names = tuple(builder.info.features[label_key].names)
    if fixed_size:
        if builder.info.dataset_size and builder.info.dataset_size < _CACHE_LIMIT_BYTES:
            dataset = dataset.cache()
        if reading.shuffle:
            dataset = dataset.shuffle(min(reading.shuffle_buffer, count), seed=reading.seed,
                                      reshuffle_each_iteration=True)
        shape = tuple(builder.info.features[image_key].shape)
        info = DatasetInfo(name, reading.split, len(class_names), class_names, count, shape)
        return cast_and_pad_crop_flip(dataset, reading.training, reading.seed), info
    if reading.shuffle:
        dataset = dataset.shuffle(reading.shuffle_buffer, seed=reading.seed,
                                  reshuffle_each_iteration=True)
    examples = dataset.map(lambda image, label: (image, label,
                                                 tf.constant(f"tfds:{builder.name}")))
    dataset = decoded(examples, reading.training, reading.decoding, reading.seed)
    size = reading.decoding.image_size
    return dataset, DatasetInfo(name, reading.split, len(class_names), class_names, count,
                                (size, size, 3))


# ---------------------------------------------------------------------------- the table
READERS = {**{name: read_arrays for name in files.ARRAY_DATASETS},
           **{name: read_folder for name in files.FOLDER_DATASETS}}


def reader_for(name):
    """The reader of the dataset `name`: READERS', or `read_tfds` for "tfds:<name>"."""
    if name in READERS:
        return READERS[name]
    if name.startswith(files.TFDS_PREFIX):
        return read_tfds
    raise ArgumentError("name", f"{name!r} is not a known dataset: use one of "
                                f"{', '.join(READERS)} or tfds:<name>.")
