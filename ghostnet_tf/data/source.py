"""`DataSource`: where a dataset is and how its files are read, passed whole to the input
pipelines, the evaluation and the export. Pure Python (no TensorFlow, no Keras)."""
import dataclasses
import os
from typing import Optional, Union

from ghostnet_tf.checks import check_crop_pct, check_interpolation, check_label_offset


def _path(value):
    return None if value is None else os.fspath(value)


@dataclasses.dataclass(frozen=True)
class DataSource:
    """A dataset's name (see `make_dataset`) and how to read it.

    Args:
        name: "cifar10", "cifar100", "mnist", "fashion_mnist", "folder" (or "imagenet"), or
            "tfds:<name>".
        data_dir: where its files are; a TFDS data_dir for tfds; None: the standard places.
        labels_file: labels of a flat validation folder.
        skip_corrupt: skip corrupt image files with a warning instead of stopping.
        label_offset: TFRecord shards: what to subtract from the stored labels, "auto" (1
            unless a label is 0), 0 or 1.
        interpolation, crop_pct: image files: what replaces the model's evaluation
            transform's resize interpolation and crop fraction (None: the model's).
        class_names: the class order of an image folder (default: its sorted train folders).
        download: allow TFDS to download a small dataset that is not on disk.
        resize_arrays: give the array datasets' images (CIFAR, MNIST) the shape of the
            model they are read for (resized, grayscale as RGB): evaluating or exporting a
            model trained with data.image_size. Image files are always resized.
    """
    name: str
    data_dir: Optional[str] = None
    labels_file: Optional[str] = None
    skip_corrupt: bool = False
    label_offset: Union[str, int] = "auto"
    interpolation: Optional[str] = None
    crop_pct: Optional[float] = None
    class_names: Optional[tuple] = None
    download: bool = True
    resize_arrays: bool = False

    def __post_init__(self):
        object.__setattr__(self, "data_dir", _path(self.data_dir))
        object.__setattr__(self, "labels_file", _path(self.labels_file))
        if self.class_names is not None:
            object.__setattr__(self, "class_names", tuple(self.class_names))
        check_label_offset(self.label_offset)
        if self.interpolation is not None:
            check_interpolation(self.interpolation)
        if self.crop_pct is not None:
            check_crop_pct(self.crop_pct)

    @classmethod
    def of(cls, source):
        """`source` itself, or `DataSource(source)` for a dataset name."""
        return source if isinstance(source, cls) else cls(source)

    def eval_transform(self, model_transform):
        """The evaluation transform of images from here for a model that expects
        `model_transform` (an `EvalTransform`): with this source's overrides."""
        return model_transform.overridden(self.interpolation, self.crop_pct)

    def transform_of_images(self, model_transform):
        """What the images from here get for a model that expects `model_transform`: the
        array datasets' (CIFAR, MNIST) are resized whole, bilinear, when at all
        (`resize_arrays`); image files get `eval_transform`."""
        from ghostnet_tf.data.eval_transform import PLAIN_EVAL_TRANSFORM
        from ghostnet_tf.data.files import ARRAY_DATASETS

        if self.name in ARRAY_DATASETS:
            return PLAIN_EVAL_TRANSFORM
        return self.eval_transform(model_transform)

    def array_shape_for(self, input_shape):
        """The `make_dataset` array_shape for a model of `input_shape`: that shape with
        `resize_arrays`, else None (the arrays' own)."""
        return tuple(input_shape) if self.resize_arrays and input_shape else None

    def replace(self, **changes):
        return dataclasses.replace(self, **changes)
