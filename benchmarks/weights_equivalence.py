"""Converted weights against PyTorch: the largest logit difference at each width.

    pip install -e ".[torch]" && python benchmarks/weights_equivalence.py

Builds the official GhostNet architecture in PyTorch (reference/torch_ghostnet.py) with random
weights and random BN statistics, saves its state_dict, converts it with the library's
converter and compares the logits of both models, in eval mode, on random inputs.
"""
import os
import sys
import tempfile

import numpy as np

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))


def main():
    import keras
    import torch

    from ghostnet_tf.models import GhostNet, convert_checkpoint
    from ghostnet_tf.models.ghostnet import model_name
    from reference.torch_ghostnet import random_ghostnet

    images = np.random.default_rng(1).normal(size=(8, 3, 224, 224)).astype("float32")
    print(f"torch {torch.__version__}, keras {keras.__version__} ({keras.backend.backend()}), "
          f"{len(images)} random 224x224 images\n")
    print("| width | max abs logit difference | largest abs logit | same top-1 |")
    print("| ---: | ---: | ---: | ---: |")
    for width in (0.5, 1.0, 1.3):
        reference = random_ghostnet(width)
        with tempfile.TemporaryDirectory() as folder:
            torch.save(reference.state_dict(), os.path.join(folder, "ghostnet.pth"))
            converted = os.path.join(folder, "ghostnet.weights.h5")
            convert_checkpoint(os.path.join(folder, "ghostnet.pth"), model_name(width),
                               converted)
            model = GhostNet(width=width, weights=converted, include_preprocessing=False,
                             classifier_activation=None)
        with torch.no_grad():
            expected = reference(torch.from_numpy(images)).numpy()
        actual = keras.ops.convert_to_numpy(model(images.transpose(0, 2, 3, 1), training=False))
        same = (actual.argmax(axis=1) == expected.argmax(axis=1)).mean()
        print(f"| {width} | {np.abs(actual - expected).max():.2e} | "
              f"{np.abs(expected).max():.2f} | {same:.0%} |")
    return 0


if __name__ == "__main__":
    sys.exit(main())
