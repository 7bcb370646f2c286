"""tf.data input pipelines for `train.py`, `eval.py` and the export calibration.

`make_dataset(source, split, ...)` returns a batched `tf.data.Dataset` of (images, labels) and a
`DatasetInfo`. Images are float32 RGB (or grayscale) pixels in [0, 255]: normalization
happens in exactly one place, the model's preprocessing layer. Labels are int64 class
indices, or one-hot float32 vectors when MixUp or CutMix is on.

Sources:
- "cifar10", "cifar100", "mnist", "fashion_mnist": their standard files (see
  `ghostnet_tf.data.files`), else TFDS when the machine is online;
- "folder" (alias "imagenet"): `data_dir/train/<class>/*.JPEG` and `data_dir/val/...`,
  ImageNet's flat `val/` folder with `labels_file`, or TFRecord shards
  (`data_dir/train-*-of-*`, `validation-*`) with `image/encoded` and `image/class/label`;
- "tfds:<name>": any dataset of a TFDS data_dir.
"""
import contextlib
import dataclasses
import os
import re
import sys

import tensorflow as tf

from ghostnet_tf.checks import ArgumentError, check_label_offset, check_positive_int
from ghostnet_tf.data import files
from ghostnet_tf.data.batches import synthetic_arrays
from ghostnet_tf.data.eval_transform import DEFAULT_EVAL_TRANSFORM
from ghostnet_tf.data.files import DatasetInfo
from ghostnet_tf.data.source import DataSource
from ghostnet_tf.data.transforms import PADDING, pad_crop_flip
from ghostnet_tf.imagenet import IMAGENET_INPUT_SIZE
from ghostnet_tf.network import is_online

AUTOTUNE = tf.data.AUTOTUNE
ARRAY_SOURCES = tuple(files.ARRAY_DATASETS)
FOLDER_SOURCES = files.FOLDER_DATASETS
TFDS_PREFIX = files.TFDS_PREFIX
# Where TFDS downloads each small dataset from: resolved to tell online from offline at once
# (an offline TFDS download otherwise retries for minutes).
_DOWNLOAD_HOSTS = {"cifar10": "www.cs.toronto.edu", "cifar100": "www.cs.toronto.edu",
                   "mnist": "storage.googleapis.com",
                   "fashion_mnist": "fashion-mnist.s3-website.eu-central-1.amazonaws.com"}
IMAGENET_MANUAL_FILES = ("ILSVRC2012_img_train.tar", "ILSVRC2012_img_val.tar")
_CACHE_LIMIT_BYTES = 2 * 1024 ** 3  # TFDS datasets smaller than this are cached decoded


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


# ---------------------------------------------------------------------------- transforms
def random_pad_crop_flip(image, seed=None):
    """CIFAR-style training transform (`transforms.pad_crop_flip`): zero-pad 4, crop back to
    size at a random place, flip left-right at random."""
    offsets = tf.random.uniform((2,), 0, 2 * PADDING + 1, dtype=tf.int32, seed=seed)
    flip = tf.random.uniform((), seed=seed) < 0.5
    return pad_crop_flip(image, offsets[0], offsets[1], flip)


def _jpeg_is_complete(contents):
    """A JPEG ends with the EOI marker FFD9, possibly followed by a little padding: look for
    it among the last 16 bytes."""
    tail = tf.strings.substr(contents, tf.maximum(tf.strings.length(contents) - 16, 0), 16)
    tail_bytes = tf.strings.bytes_split(tail)
    pairs = tf.strings.join([tail_bytes[:-1], tail_bytes[1:]])
    return tf.reduce_any(tf.equal(pairs, b"\xff\xd9"))


def image_is_valid(contents):
    """A cheap test, before decoding, that `contents` is a complete JPEG or PNG (or a BMP or
    GIF, which are taken as they are): truncated downloads and non-images fail it."""
    is_jpeg = tf.strings.substr(contents, 0, 3) == b"\xff\xd8\xff"
    is_png = tf.strings.substr(contents, 0, 8) == b"\x89PNG\r\n\x1a\n"
    png_complete = tf.strings.substr(contents, tf.maximum(tf.strings.length(contents) - 8, 0),
                                     4) == b"IEND"
    other = tf.strings.regex_full_match(tf.strings.substr(contents, 0, 2), "BM|GI")
    return ((is_jpeg & _jpeg_is_complete(contents)) | (is_png & png_complete) | other) & (
        tf.strings.length(contents) > 16)


def _random_crop_window(shape, seed, min_scale):
    """Inception-style crop window: area min_scale..1, aspect ratio 3/4..4/3."""
    begin, size, _ = tf.image.sample_distorted_bounding_box(
        shape, bounding_boxes=tf.constant([0.0, 0.0, 1.0, 1.0], shape=(1, 1, 4)),
        min_object_covered=0.0, aspect_ratio_range=(3 / 4, 4 / 3),
        area_range=(min_scale, 1.0), max_attempts=10, use_image_if_no_bounding_boxes=True,
        seed=seed if seed is not None else 0)
    return tf.stack([begin[0], begin[1], size[0], size[1]])


def decode_train_image(contents, image_size, channels=3, min_scale=0.08, seed=None):
    """Random-resized crop decoded straight from the JPEG (only the crop is decoded), resize
    to `image_size`, random flip. Non-JPEG images are decoded whole, then cropped."""
    def jpeg():
        window = _random_crop_window(tf.image.extract_jpeg_shape(contents), seed, min_scale)
        return tf.image.decode_and_crop_jpeg(contents, window, channels=channels)

    def other():
        image = tf.io.decode_image(contents, channels=channels, expand_animations=False)
        window = _random_crop_window(tf.shape(image), seed, min_scale)
        return tf.image.crop_to_bounding_box(image, window[0], window[1], window[2], window[3])

    image = tf.cond(tf.io.is_jpeg(contents), jpeg, other)
    image = tf.image.resize(image, (image_size, image_size), method="bilinear", antialias=False)
    image = tf.image.random_flip_left_right(image, seed=seed)
    return tf.ensure_shape(image, (image_size, image_size, channels))


def decode_eval_image(contents, image_size, channels=3, transform=DEFAULT_EVAL_TRANSFORM):
    """Decode, resize the short side to image_size / crop_pct (256 for 224 at 0.875) with the
    transform's interpolation, and center-crop."""
    image = tf.io.decode_image(contents, channels=channels, expand_animations=False)
    return resize_and_center_crop(image, image_size, transform)


def resize_and_center_crop(image, image_size, transform=DEFAULT_EVAL_TRANSFORM):
    """An `EvalTransform` (ghostnet_tf.data.eval_transform) applied to one decoded image."""
    shape = tf.cast(tf.shape(image)[:2], tf.float32)
    scale = (image_size / transform.crop_pct) / tf.reduce_min(shape)
    resized = tf.cast(tf.round(shape * scale), tf.int32)
    image = tf.image.resize(image, resized, method=transform.interpolation, antialias=True)
    top = (resized[0] - image_size) // 2
    left = (resized[1] - image_size) // 2
    image = image[top:top + image_size, left:left + image_size]
    return tf.ensure_shape(image, (image_size, image_size, None))


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


# ---------------------------------------------------------------------------- sources
def _shard_and_shuffle(dataset, count, shuffle, seed, input_context):
    """This worker's share of `dataset` (under multi-worker training), shuffled whole each
    epoch when `shuffle`: used on lists that hold only indices, paths or shard names."""
    if input_context is not None:
        dataset = dataset.shard(input_context.num_input_pipelines,
                                input_context.input_pipeline_id)
    if shuffle:
        dataset = dataset.shuffle(count, seed=seed, reshuffle_each_iteration=True)
    return dataset


def _array_dataset(images, labels, shuffle, seed, input_context):
    """Examples of in-memory arrays, shuffled by index: a full permutation each epoch that
    holds only integers, never a copy of the images."""
    count = len(images)
    indices = _shard_and_shuffle(tf.data.Dataset.range(count), count, shuffle, seed,
                                 input_context)
    images, labels = tf.constant(images), tf.constant(labels)
    return indices.map(lambda i: (tf.gather(images, i), tf.gather(labels, i)),
                       num_parallel_calls=AUTOTUNE)


def _file_examples(paths, labels, shuffle, seed, input_context):
    """(file contents, label, path) of image files. File lists are shuffled whole: they are
    only strings, and folders are sorted by class, which a bounded buffer would not undo."""
    dataset = _shard_and_shuffle(tf.data.Dataset.from_tensor_slices((list(paths), labels)),
                                 len(paths), shuffle, seed, input_context)
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


def _tfrecord_examples(shards, shuffle, seed, shuffle_buffer, input_context, offset):
    """(encoded image, 0-based label, shard path) from TFRecord shards in ImageNet's
    format; `offset` is subtracted from the stored labels."""
    dataset = _shard_and_shuffle(tf.data.Dataset.from_tensor_slices(shards), len(shards),
                                 shuffle, seed, input_context)
    dataset = dataset.interleave(
        lambda shard: tf.data.TFRecordDataset(shard).map(lambda record: (record, shard)),
        cycle_length=min(16, len(shards)), num_parallel_calls=AUTOTUNE)
    if shuffle:
        dataset = dataset.shuffle(shuffle_buffer, seed=seed, reshuffle_each_iteration=True)
    features = {"image/encoded": tf.io.FixedLenFeature([], tf.string),
                _LABEL: tf.io.FixedLenFeature([], tf.int64)}

    def parse(record, shard):
        example = tf.io.parse_single_example(record, features)
        return example["image/encoded"], example[_LABEL] - offset, shard
    return dataset.map(parse, num_parallel_calls=AUTOTUNE)


_CORRUPT_MARKER = "ghostnet_tf: corrupt, truncated or non-image file"
_CORRUPT_PATH = re.compile(re.escape(_CORRUPT_MARKER) + r"[^\]]*\] \[(?:b')?([^\]]+?)'?\]")


def corrupt_image_error(error):
    """For the tf.errors.InvalidArgumentError that a corrupt image raises while a dataset of
    `make_dataset` is read: a one-line ArgumentError naming the file and `skip_corrupt`
    (TensorFlow's own message buries the file in a long traceback); None for other errors."""
    found = _CORRUPT_PATH.search(str(error))
    if found is None:
        return None
    return ArgumentError("skip_corrupt", f"is off and {found.group(1)} is corrupt, truncated or "
                                         "not an image: remove or replace it, or turn "
                                         "skip_corrupt on to skip such files with a warning.")


@contextlib.contextmanager
def corrupt_images_explained():
    """Inside, reading a dataset of `make_dataset` that meets a corrupt image ends with
    `corrupt_image_error`'s one line instead of TensorFlow's error."""
    try:
        yield
    except tf.errors.InvalidArgumentError as error:
        clear = corrupt_image_error(error)
        if clear is None:
            raise
        raise clear from None


def _check_or_skip(examples, skip_corrupt):
    """Stop on the first corrupt image with an error naming its file (see
    `corrupt_image_error`), or skip it with a warning that names it and counts the skipped
    files."""
    if not skip_corrupt:
        def checked(contents, label, path):
            check = tf.debugging.Assert(image_is_valid(contents), [
                _CORRUPT_MARKER + " (pass skip_corrupt=True to skip such files):", path])
            with tf.control_dependencies([check]):
                return tf.identity(contents), label, path
        return examples.map(checked, num_parallel_calls=AUTOTUNE)
    skipped = tf.Variable(0, dtype=tf.int64, trainable=False)

    def keep(contents, label, path):
        valid = image_is_valid(contents)

        def warn():
            count = skipped.assign_add(1)
            tf.print("ghostnet_tf: warning: skipped corrupt image", count, "so far:", path,
                     output_stream=sys.stderr)
            return valid
        return tf.cond(valid, lambda: valid, warn)
    return examples.filter(keep)


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


def _tfds_examples(builder, split, shuffle, seed, input_context, image_key, label_key):
    """Either decoded (image, label) examples (fixed-size datasets) or (bytes, label, name)."""
    import tensorflow_datasets as tfds

    splits = builder.info.splits
    tfds_split = split if split in splits else {"test": "validation"}.get(split, split)
    if tfds_split not in splits:
        raise ArgumentError("split", f"{split!r} is not a split of tfds:{builder.name}; it "
                                     f"has {list(splits)}.")
    image_feature = builder.info.features[image_key]
    read_config = tfds.ReadConfig(input_context=input_context, shuffle_seed=seed)
    fixed_size = None not in image_feature.shape
    decoders = None if fixed_size else {image_key: tfds.decode.SkipDecoding()}
    dataset = builder.as_dataset(split=tfds_split, shuffle_files=shuffle, decoders=decoders,
                                 read_config=read_config)
    dataset = dataset.map(lambda example: (example[image_key], example[label_key]),
                          num_parallel_calls=AUTOTUNE)
    return dataset, fixed_size, splits[tfds_split].num_examples


# ---------------------------------------------------------------------------- entry point
@dataclasses.dataclass(frozen=True)
class _Decoding:
    """How image files become training or evaluation images."""
    image_size: int
    eval_transform: object  # an EvalTransform
    min_scale: float
    skip_corrupt: bool


def make_dataset(source, split="train", batch_size=128, training=None, image_size=None,
                 eval_transform=None, min_scale=0.08, augmentation=None,
                 shuffle_buffer=10_000, seed=None, deterministic=False, input_context=None,
                 drop_remainder=None, shuffle=None):
    """A batched, prefetched `tf.data.Dataset` of (images, labels), and its `DatasetInfo`.

    Args:
        source: a `DataSource` (where the data is and how to read it), or a dataset name
            for `DataSource(name)`: "cifar10", "cifar100", "mnist", "fashion_mnist",
            "folder" (or "imagenet"), or "tfds:<name>".
        split: "train" or "test" (the validation split of ImageNet-style datasets).
        batch_size: batch size (per input pipeline, under multi-worker training).
        training: shuffle and augment; defaults to `split == "train"`.
        image_size: output size of image-file datasets (default 224, ImageNet's); array
            datasets keep their own size.
        eval_transform: how the model expects evaluation images of image-file datasets to
            be resized and cropped, an `EvalTransform` (default: bilinear, crop 0.875, i.e.
            resize the short side to image_size / 0.875, then center-crop); give the
            model's, `model_entry(name).eval_transform`. The source's `interpolation` and
            `crop_pct` override it.
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
    name, data_dir = source.name, source.data_dir
    training = split == "train" if training is None else training
    drop_remainder = training if drop_remainder is None else drop_remainder
    shuffle = training if shuffle is None else shuffle
    augmentation = augmentation or Augmentation()
    if deterministic and seed is None:
        seed = 0
    check_positive_int("batch_size", batch_size)
    if split not in files.SPLITS:
        raise ArgumentError("split", f"must be one of {files.SPLITS}, got {split!r}.")
    decoding = _Decoding(image_size or IMAGENET_INPUT_SIZE,
                         source.eval_transform(eval_transform or DEFAULT_EVAL_TRANSFORM),
                         min_scale, source.skip_corrupt)

    if name in ARRAY_SOURCES:
        dataset, info = _small_dataset(name, split, data_dir, training, shuffle, seed,
                                       shuffle_buffer, input_context, source.download,
                                       decoding)
    elif name in FOLDER_SOURCES:
        kind, items, labels, names = _folder_source(data_dir, split, source.labels_file,
                                                    source.class_names)
        if kind == "files":
            examples = _file_examples(items, labels, shuffle, seed, input_context)
            count = len(items)
        else:
            index = tfrecord_index(items, source.label_offset)
            examples = _tfrecord_examples(items, shuffle, seed, shuffle_buffer, input_context,
                                          index["offset"])
            count, names = index["num_examples"], names or index["class_names"]
        dataset = _decode(_check_or_skip(examples, decoding.skip_corrupt), training,
                          decoding, seed)
        size = decoding.image_size
        info = DatasetInfo(name, split, len(names), tuple(names), count, (size, size, 3))
    elif name.startswith(TFDS_PREFIX):
        tfds_name = name[len(TFDS_PREFIX):]
        builder = _tfds_builder(tfds_name, data_dir, source.download)
        dataset, info = _tfds_dataset(builder, name, split, training, shuffle, seed,
                                      shuffle_buffer, input_context, decoding)
    else:
        raise ArgumentError("name", f"{name!r} is not a known dataset: use one of "
                                    f"{', '.join(ARRAY_SOURCES + FOLDER_SOURCES)} or tfds:<name>.")

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


def _decode(examples, training, decoding, seed):
    def decode(contents, label, _path):
        size = decoding.image_size
        image = (decode_train_image(contents, size, min_scale=decoding.min_scale, seed=seed)
                 if training else decode_eval_image(contents, size,
                                                    transform=decoding.eval_transform))
        return image, label
    return examples.map(decode, num_parallel_calls=AUTOTUNE)


def _small_dataset(name, split, data_dir, training, shuffle, seed, shuffle_buffer,
                   input_context, download, decoding):
    """A small dataset from its standard files, or through TFDS when none are on disk."""
    try:
        images, labels, info = files.load_arrays(name, split, data_dir)
    except FileNotFoundError as missing:
        # A data_dir the user gave is the only place looked: no download in its stead.
        if data_dir is not None or not (download and is_online(_DOWNLOAD_HOSTS[name])):
            raise FileNotFoundError(str(missing)) from None
        builder = _tfds_builder(name, None, download=True)  # TFDS uses the same names
        return _tfds_dataset(builder, name, split, training, shuffle, seed, shuffle_buffer,
                             input_context, decoding)
    dataset = _array_dataset(images, labels, shuffle, seed, input_context)
    return _augment_small(dataset, training, seed), info


def _augment_small(dataset, training, seed):
    def transform(image, label):
        image = tf.cast(image, tf.float32)
        return (random_pad_crop_flip(image, seed) if training else image), label
    return dataset.map(transform, num_parallel_calls=AUTOTUNE)


def _tfds_dataset(builder, name, split, training, shuffle, seed, shuffle_buffer,
                  input_context, decoding):
    image_key, label_key = builder.info.supervised_keys or ("image", "label")
    dataset, fixed_size, count = _tfds_examples(builder, split, shuffle, seed, input_context,
                                                image_key, label_key)
    class_names = tuple(builder.info.features[label_key].names)
    if fixed_size:
        if builder.info.dataset_size and builder.info.dataset_size < _CACHE_LIMIT_BYTES:
            dataset = dataset.cache()
        if shuffle:
            dataset = dataset.shuffle(min(shuffle_buffer, count), seed=seed,
                                      reshuffle_each_iteration=True)
        shape = tuple(builder.info.features[image_key].shape)
        info = DatasetInfo(name, split, len(class_names), class_names, count, shape)
        return _augment_small(dataset, training, seed), info
    if shuffle:
        dataset = dataset.shuffle(shuffle_buffer, seed=seed, reshuffle_each_iteration=True)
    examples = dataset.map(lambda image, label: (image, label, tf.constant(f"tfds:{builder.name}")))
    dataset = _decode(_check_or_skip(examples, decoding.skip_corrupt), training, decoding,
                      seed)
    size = decoding.image_size
    return dataset, DatasetInfo(name, split, len(class_names), class_names, count,
                                (size, size, 3))


def make_synthetic_dataset(image_shape, num_classes, batch_size, steps=None, seed=0):
    """One random in-memory batch repeated `steps` times (None: forever): the model's own
    speed, free of any input cost."""
    batch = synthetic_arrays(image_shape, num_classes, batch_size, seed)
    return tf.data.Dataset.from_tensors(batch).repeat(steps)
