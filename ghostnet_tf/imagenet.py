"""The 1000 ImageNet-1k classes in the standard order (sorted WordNet IDs, class 0 = tench).

`IMAGENET_WNIDS` are the synset IDs of the ILSVRC-2012 folders; `IMAGENET_CLASSES` their
English names, as torchvision, timm and keras.applications number them.
"""
import os


def _read_classes():
    path = os.path.join(os.path.dirname(__file__), "imagenet_classes.txt")
    with open(path, encoding="utf-8") as file:
        rows = [line.rstrip("\n").split("\t") for line in file]
    return tuple(wnid for wnid, _ in rows), tuple(name for _, name in rows)


IMAGENET_WNIDS, IMAGENET_CLASSES = _read_classes()
