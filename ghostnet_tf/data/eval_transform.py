"""How an evaluation image is prepared: the `EvalTransform` record and its defaults.

Each registry entry names its model's transform; the data pipelines, the predictors and the
export apply it. Pure Python.
"""
import dataclasses

from ghostnet_tf.checks import check_crop_pct, check_interpolation


@dataclasses.dataclass(frozen=True)
class EvalTransform:
    """How an evaluation image is prepared: resize the short side to size / crop_pct with
    `interpolation` (antialiased), then center-crop to size. crop_pct 1.0 resizes the whole
    image to the input size, which is the plain image for datasets already at that size."""
    interpolation: str = "bilinear"  # "bilinear" or "bicubic"
    crop_pct: float = 0.875

    def overridden(self, interpolation=None, crop_pct=None):
        """This transform with the given fields replaced (None keeps a field)."""
        if interpolation is not None:
            check_interpolation(interpolation)
        if crop_pct is not None:
            check_crop_pct(crop_pct)
        return EvalTransform(interpolation or self.interpolation, crop_pct or self.crop_pct)


# Images for which no model is known (an export or a foreign .keras file) of at least
# SMALL_IMAGE_SIZE pixels get the ImageNet transform; smaller ones (CIFAR, MNIST) are seen whole.
DEFAULT_EVAL_TRANSFORM = EvalTransform("bilinear", 0.875)
PLAIN_EVAL_TRANSFORM = EvalTransform("bilinear", 1.0)
SMALL_IMAGE_SIZE = 64
