"""PaddleClas's own GhostNet, the reference the converted `_paddle` models are checked against.

The model definition is PaddleClas's `ppcls/arch/backbone/model_zoo/ghostnet.py`, from the
`paddleclas` wheel (installed with `pip install --no-deps paddleclas==2.6.0`: its declared
requirements pin numpy 1.24 and OpenCV 4.6, which TensorFlow 2.21 cannot share, and the
GhostNet module needs paddle alone). Its package's `__init__` files import all of PaddleClas
(OpenCV, faiss); the packages above the module are entered here as bare namespaces, so that
importing the module runs its own code and that of `ppcls/utils/save_load.py` only.

paddle 3.3 crashes (a segmentation fault) when it is imported after TensorFlow, so the tests
run it in a process of its own: `python -m reference.paddle_ghostnet --width 0.5 --seed 1
--sizes 224,225 --out DIR` writes DIR/model.pdparams and DIR/reference.npz (the images, the
logits at each size and the trainable parameter count).
"""
import argparse
import importlib
import importlib.util
import os
import sys
import types

import numpy as np

_PACKAGE = "paddleclas"
_MODULE = "ppcls.arch.backbone.model_zoo.ghostnet"
# PaddleClas's constructor of each width.
CONSTRUCTORS = {0.5: "GhostNet_x0_5", 1.0: "GhostNet_x1_0", 1.3: "GhostNet_x1_3"}


def paddleclas_module():
    """PaddleClas's ghostnet module."""
    name = f"{_PACKAGE}.{_MODULE}"
    if name in sys.modules:
        return sys.modules[name]
    spec = importlib.util.find_spec(_PACKAGE)
    if spec is None:
        raise ImportError("paddleclas is not installed: pip install --no-deps "
                          "paddleclas==2.6.0 (the README's test install does).")
    root = os.path.dirname(spec.origin)
    parts = _MODULE.split(".")[:-1]
    for depth in range(len(parts) + 1):
        package = ".".join([_PACKAGE] + parts[:depth])
        if package not in sys.modules:
            namespace = types.ModuleType(package)
            namespace.__path__ = [os.path.join(root, *parts[:depth])]
            sys.modules[package] = namespace
    utils = f"{_PACKAGE}.ppcls.utils"
    if utils not in sys.modules:
        namespace = types.ModuleType(utils)
        namespace.__path__ = [os.path.join(root, "ppcls", "utils")]
        sys.modules[utils] = namespace
    return importlib.import_module(name)


def random_paddleclas_ghostnet(width, classes=1000, seed=0):
    """PaddleClas's GhostNet at `width` in eval mode, with random weights and batch norm
    statistics (so that a wrong mapping of any of them shows in the logits)."""
    import paddle

    paddle.seed(seed)
    model = getattr(paddleclas_module(), CONSTRUCTORS[width])(class_num=classes)
    rng = np.random.default_rng(seed)
    state = model.state_dict()
    for key, value in state.items():
        shape = tuple(value.shape)
        if key.endswith("._mean"):
            value.set_value(rng.normal(0, 0.1, shape).astype("float32"))
        elif key.endswith("._variance"):
            value.set_value(rng.uniform(0.5, 1.5, shape).astype("float32"))
        elif key.endswith("_batch_norm.weight"):
            # Small enough that activations stay of order 1 through the 16 bottlenecks.
            value.set_value(rng.uniform(0.2, 0.6, shape).astype("float32"))
        elif key.endswith("_batch_norm.bias") or key.endswith("se_block.excitation.bias"):
            # The squeeze-excite's clip(x, 0, 1) gate: biases around 0.5 keep it in its
            # linear range, where a wrong mapping changes the output.
            offset = 0.5 if "excitation" in key else 0.0
            value.set_value((offset + rng.normal(0, 0.1, shape)).astype("float32"))
    model.eval()
    return model


def paddle_logits(model, images):
    """Logits of PaddleClas's model for NCHW float32 `images`."""
    import paddle

    with paddle.no_grad():
        return model(paddle.to_tensor(images)).numpy()


def trainable_parameters(model):
    """Trainable parameters as paddle counts them (batch norm statistics excluded)."""
    return sum(int(np.prod(p.shape)) for p in model.parameters() if not p.stop_gradient)


def main(argv=None):
    import paddle

    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--width", type=float, required=True, choices=sorted(CONSTRUCTORS))
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--classes", type=int, default=1000)
    parser.add_argument("--sizes", default="224", help="input sizes, comma-separated")
    parser.add_argument("--out", required=True)
    args = parser.parse_args(argv)
    os.makedirs(args.out, exist_ok=True)
    model = random_paddleclas_ghostnet(args.width, args.classes, args.seed)
    paddle.save(model.state_dict(), os.path.join(args.out, "model.pdparams"))
    rng = np.random.default_rng(args.seed + 100)
    arrays = {"params": np.array(trainable_parameters(model))}
    for size in map(int, args.sizes.split(",")):
        images = rng.normal(size=(2, 3, size, size)).astype("float32")
        arrays[f"images_{size}"] = images
        arrays[f"logits_{size}"] = paddle_logits(model, images)
    np.savez(os.path.join(args.out, "reference.npz"), **arrays)


if __name__ == "__main__":
    main()
