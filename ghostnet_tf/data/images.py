"""Image files as the models see them: validity checks, the training and evaluation decodes,
and the one-line error of a corrupt file. TensorFlow ops, for tf.data and for `read_image`."""
import contextlib
import dataclasses
import re
import sys
from typing import Optional

import tensorflow as tf

from ghostnet_tf.checks import ArgumentError
from ghostnet_tf.data.eval_transform import DEFAULT_EVAL_TRANSFORM
from ghostnet_tf.data.transforms import PADDING, pad_crop_flip

AUTOTUNE = tf.data.AUTOTUNE


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


def check_or_skip(examples, skip_corrupt):
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




@dataclasses.dataclass(frozen=True)
class Decoding:
    """How image files become training or evaluation images, and the shape the small
    datasets' arrays are given (None: their own)."""
    image_size: int
    eval_transform: object  # an EvalTransform, resolved by the caller
    min_scale: float
    skip_corrupt: bool
    array_shape: Optional[tuple] = None  # (height, width, channels)


def decoded(examples, training, decoding, seed):
    """(image, label) of (file contents, label, path) examples: checked (or skipped when
    corrupt), then decoded for training (random-resized crop and flip) or evaluation."""
    def decode(contents, label, _path):
        size = decoding.image_size
        image = (decode_train_image(contents, size, min_scale=decoding.min_scale, seed=seed)
                 if training else decode_eval_image(contents, size,
                                                    transform=decoding.eval_transform))
        return image, label
    return check_or_skip(examples, decoding.skip_corrupt).map(decode,
                                                              num_parallel_calls=AUTOTUNE)


def cast_and_pad_crop_flip(dataset, training, seed):
    """Decoded small images (CIFAR, MNIST) as float32, with the CIFAR training transform."""
    def transform(image, label):
        image = tf.cast(image, tf.float32)
        return (random_pad_crop_flip(image, seed) if training else image), label
    return dataset.map(transform, num_parallel_calls=AUTOTUNE)


def reshaped_arrays(dataset, shape):
    """Small images (after their training transform) resized, bilinear, to `shape`'s height
    and width, and grayscale given as RGB (R = G = B) when `shape` has 3 channels: e.g.
    Fashion-MNIST at 96x96x3 for GhostNet, whose last stage then has 3x3 maps."""
    height, width, channels = shape

    def reshape(image, label):
        if image.shape[-1] != channels:
            image = tf.image.grayscale_to_rgb(image)
        if tuple(image.shape[:2]) != (height, width):
            image = tf.image.resize(image, (height, width), method="bilinear")
        return tf.ensure_shape(image, shape), label
    return dataset.map(reshape, num_parallel_calls=AUTOTUNE)
