"""Converted weights against PyTorch and PaddlePaddle: the largest logit difference at each
width.

    pip install -e ".[torch]" && python benchmarks/weights_equivalence.py [--paddle]

Builds the official GhostNet architecture in PyTorch (reference/torch_ghostnet.py) with random
weights and random BN statistics, saves its state_dict, converts it with the library's
converter and compares the logits of both models, in eval mode, on random inputs. With
`--paddle` (paddlepaddle and `pip install --no-deps paddleclas==2.6.0`, as the tests), the
same for PaddleClas's own GhostNet run by paddle (reference/paddle_ghostnet.py, in a process
of its own) and its `.pdparams` file, at 224x224 and 225x225.
"""
import argparse
import os
import subprocess
import sys
import tempfile

import numpy as np

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, ROOT)


def paddle_table():
    """The same comparison for PaddleClas's GhostNet and its .pdparams files."""
    import keras

    from ghostnet_tf.models import get_model
    from ghostnet_tf.models.ghostnet import model_name

    sizes = (224, 225)
    print("\nPaddleClas's GhostNet (paddle, reference/paddle_ghostnet.py), 2 random images per "
          "size\n")
    print("| width | size | max abs logit difference | largest abs logit | relative | "
          "same top-1 |")
    print("| ---: | ---: | ---: | ---: | ---: | ---: |")
    for width in (0.5, 1.0, 1.3):
        with tempfile.TemporaryDirectory() as folder:
            subprocess.run([sys.executable, "-m", "reference.paddle_ghostnet", "--width",
                            str(width), "--seed", "1", "--sizes", ",".join(map(str, sizes)),
                            "--out", folder], check=True, cwd=ROOT, capture_output=True)
            reference = dict(np.load(os.path.join(folder, "reference.npz")))
            for size in sizes:
                model = get_model(model_name(width, design="paddleclas"),
                                  weights=os.path.join(folder, "model.pdparams"),
                                  input_shape=(size, size, 3), include_preprocessing=False,
                                  classifier_activation=None)
                expected = reference[f"logits_{size}"]
                actual = keras.ops.convert_to_numpy(model(
                    reference[f"images_{size}"].transpose(0, 2, 3, 1), training=False))
                difference, scale = np.abs(actual - expected).max(), np.abs(expected).max()
                same = (actual.argmax(axis=1) == expected.argmax(axis=1)).mean()
                print(f"| {width} | {size} | {difference:.2e} | {scale:.3f} | "
                      f"{difference / scale:.1e} | {same:.0%} |")


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--paddle", action="store_true",
                        help="also PaddleClas's GhostNet against paddle")
    args = parser.parse_args()
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
    if args.paddle:
        paddle_table()
    return 0


if __name__ == "__main__":
    sys.exit(main())
