"""The CIFAR training transform, defined once for both input paths: the tf.data pipelines
(TensorFlow backend) and the numpy batches that `fit` reads on the JAX backend. Written with
`keras.ops`; the random draws are the caller's, so that each path keeps its own generator."""
from keras import ops

PADDING = 4  # pixels of zero padding on every side (He et al. 2016)


def pad_crop_flip(image, offset_y, offset_x, flip, padding=PADDING):
    """`image` (height, width, channels) zero-padded by `padding` on every side, cropped back
    to its size at (`offset_y`, `offset_x`) of the padded image (each in 0..2 * padding),
    and mirrored left-right where `flip` is true."""
    height, width, channels = image.shape
    padded = ops.pad(image, ((padding, padding), (padding, padding), (0, 0)))
    crop = ops.slice(padded, (offset_y, offset_x, 0), (height, width, channels))
    return ops.where(flip, ops.flip(crop, axis=1), crop)
