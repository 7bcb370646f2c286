"""ImageNet's conventions: its normalization, input size and 1000 classes.

`IMAGENET_WNIDS` are the synset IDs of the ILSVRC-2012 folders, in the standard order (sorted,
class 0 = tench); `IMAGENET_CLASSES` their English names, as torchvision, timm and
keras.applications number them. Pure Python.
"""
import os

# The ImageNet convention (torchvision, timm, the official GhostNet release): RGB in [0, 1]
# normalized with these, evaluated at 224 after resizing the short side to 256 (crop 0.875).
IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)
IMAGENET_INPUT_SIZE = 224


def _read_classes():
    path = os.path.join(os.path.dirname(__file__), "imagenet_classes.txt")
    with open(path, encoding="utf-8") as file:
        rows = [line.rstrip("\n").split("\t") for line in file]
    return tuple(wnid for wnid, _ in rows), tuple(name for _, name in rows)


IMAGENET_WNIDS, IMAGENET_CLASSES = _read_classes()
