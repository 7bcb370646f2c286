"""Parameter and MAC counting for any Keras model, descending into nested layers.

MACs are multiply-accumulates: one per multiply-add of the convolutions and dense layers, the
paper's convention. Batch norm, activations, pooling and additions are not counted.
TensorFlow's profiler counts 2 FLOPs per MAC, so its "FLOPs" are twice these numbers.
Uses `keras` and numpy only: it runs on every backend.
"""
import dataclasses
import math

import keras
import numpy as np

from ghostnet_tf.checks import ArgumentError
from ghostnet_tf.compat import calls_recorded, sublayers

MACS_CONVENTION = ("MACs = multiply-accumulates (1 per multiply-add) of convolutions and dense "
                   "layers; BN, activations, pooling and additions not counted. "
                   "TensorFlow's profiler reports FLOPs = 2 x MACs.")


@dataclasses.dataclass
class LayerProfile:
    name: str  # path from the model, e.g. "blocks_3_0/ghost1/primary_conv"
    type: str
    output_shape: tuple
    params: int  # trainable
    macs: int


@dataclasses.dataclass
class ModelProfile:
    model: str
    input_shape: tuple
    layers: list
    params: int  # trainable parameters, as PyTorch counts them
    non_trainable_params: int  # BN moving statistics and frozen weights
    macs: int

    def to_dict(self):
        return {**dataclasses.asdict(self), "macs_convention": MACS_CONVENTION}


def _leaf_layers(layer, prefix=""):
    """(path, layer) of every layer without sublayers, in the order they were tracked."""
    for child in sublayers(layer):
        path = f"{prefix}{child.name}"
        if isinstance(child, keras.layers.InputLayer):
            continue
        if sublayers(child):
            yield from _leaf_layers(child, path + "/")
        else:
            yield path, child


def _count(weights):
    return sum(math.prod(w.shape) for w in weights)


def _macs(layer, input_shape, output_shape):
    """Multiply-accumulates of one call of a leaf layer."""
    def spatial(shape):
        return math.prod(shape[1:-1])
    if isinstance(layer, keras.layers.SeparableConv2D):
        return spatial(output_shape) * (math.prod(layer.depthwise_kernel.shape)
                                        + math.prod(layer.pointwise_kernel.shape))
    kernel = getattr(layer, "kernel", None)
    if kernel is None:
        return 0
    if isinstance(layer, (keras.layers.Conv1DTranspose, keras.layers.Conv2DTranspose,
                          keras.layers.Conv3DTranspose)):
        # Every input pixel is multiplied by the whole kernel.
        return spatial(input_shape) * math.prod(kernel.shape)
    # Conv (grouped or not), DepthwiseConv and Dense: every output position uses the kernel.
    return spatial(output_shape) * math.prod(kernel.shape)


def _first_shape(structure):
    tensors = [t for t in keras.tree.flatten(structure) if hasattr(t, "shape")]
    return tuple(tensors[0].shape) if tensors else ()


def _model_input_shape(model, input_size):
    shape = tuple(model.inputs[0].shape[1:]) if len(model.inputs) == 1 else None
    if shape is None:
        raise ArgumentError("model", "has several inputs; profile_model needs exactly one.")
    if input_size is not None:
        shape = (input_size, input_size) + shape[2:] if len(shape) == 3 else shape
    if any(size is None for size in shape):
        raise ArgumentError("input_size", f"is needed: the model's input shape {shape} has "
                                          "unknown sizes.")
    return shape


def profile_model(model, input_size=None):
    """Per-layer output shapes, parameters and MACs of `model`, for one image.

    Args:
        model: a built `keras.Model` with one image input.
        input_size: height = width of the input, for models whose input size is not fixed.

    Returns:
        A `ModelProfile`; its `layers` are the leaf layers, Ghost modules included.
    """
    input_shape = _model_input_shape(model, input_size)
    if input_size is not None and tuple(model.inputs[0].shape[1:]) != input_shape:
        # Rebuild on the requested size: the counts of a fixed-size model depend on it.
        model = keras.models.clone_model(
            model, input_tensors=keras.Input(shape=input_shape), clone_function=lambda l: l)
    leaves = list(_leaf_layers(model))
    calls = {id(layer): [] for _, layer in leaves}

    def record(layer, args, outputs):
        calls[id(layer)].append((_first_shape(args), _first_shape(outputs)))

    # Record the shapes of one eager forward pass.
    with calls_recorded([layer for _, layer in leaves], record):
        model(np.zeros((1,) + input_shape, dtype="float32"), training=False)

    rows = []
    for path, layer in leaves:
        shapes = calls[id(layer)]
        output_shape = shapes[-1][1] if shapes else ()
        rows.append(LayerProfile(
            name=path, type=type(layer).__name__, output_shape=output_shape,
            params=_count(layer.trainable_weights),
            macs=sum(_macs(layer, i, o) for i, o in shapes)))
    return ModelProfile(
        model=model.name, input_shape=input_shape, layers=rows,
        params=_count(model.trainable_weights),
        non_trainable_params=_count(model.non_trainable_weights),
        macs=sum(row.macs for row in rows))


def format_profile(profile):
    """The profile as a text table with totals."""
    header = ("layer", "type", "output shape", "params", "MACs")
    body = [(row.name, row.type, str(tuple(row.output_shape[1:])), f"{row.params:,}",
             f"{row.macs:,}") for row in profile.layers]
    widths = [max(len(line[i]) for line in [header] + body) for i in range(len(header))]
    def line(cells):
        left = [cell.ljust(width) for cell, width in zip(cells[:3], widths[:3])]
        right = [cell.rjust(width) for cell, width in zip(cells[3:], widths[3:])]
        return "  ".join(left + right)
    rule = "-" * len(line(header))
    return "\n".join(
        [f"{profile.model}, input {profile.input_shape}", line(header), rule]
        + [line(cells) for cells in body]
        + [rule,
           f"trainable params: {profile.params:,}   "
           f"non-trainable (BN statistics): {profile.non_trainable_params:,}",
           f"MACs: {profile.macs:,} ({profile.macs / 1e6:.1f}M)",
           MACS_CONVENTION])


# (model, input size, params, MACs, top-1) as the papers print them; None where the paper
# gives no figure (or none was found). GhostNet: Tables 3, 4 (CIFAR-10) and 7 (ImageNet) of
# arXiv 1911.11907. GhostNetV2: the official README (1.0x: 167M FLOPs, 75.3%) and the
# release's ImageNet figure (1.3x, 1.6x). GhostNetV3: the abstract of arXiv 2404.11202 (1.3x)
# and its 1.0x row (77.1%, the release's EMA weights).
PAPER_FIGURES = (
    ("resnet56", 32, 0.85e6, 125e6, "93.0% CIFAR-10"),
    ("ghost_resnet56", 32, 0.43e6, 63e6, "92.7% CIFAR-10"),
    ("vgg16", 32, 15e6, 313e6, "93.6% CIFAR-10"),
    ("ghost_vgg16", 32, 7.7e6, 158e6, "93.7% CIFAR-10"),
    ("ghostnet_050", 224, 2.6e6, 42e6, "66.2% ImageNet"),
    ("ghostnet_100", 224, 5.2e6, 141e6, "73.9% ImageNet"),
    ("ghostnet_130", 224, 7.3e6, 226e6, "75.7% ImageNet"),
    ("ghostnetv2_100", 224, None, 167e6, "75.3% ImageNet"),
    ("ghostnetv2_130", 224, None, 269e6, "76.9% ImageNet"),
    ("ghostnetv2_160", 224, None, 399e6, "77.8% ImageNet"),
    # GhostNetV3 deployed (folded), as the paper counts it.
    ("ghostnetv3_100", 224, None, None, "77.1% ImageNet"),
    ("ghostnetv3_130", 224, None, 269e6, "79.1% ImageNet"),
)


def paper_table():
    """Our parameter and MAC counts beside the published ones, one dict per model."""
    from ghostnet_tf.models import get_model  # models import nothing from here

    from ghostnet_tf.models.reparameterize import deploy_form

    rows = []
    for name, size, params, macs, top1 in PAPER_FIGURES:
        model = get_model(name)
        # GhostNetV3 counts as it runs: folded.
        profile = profile_model(deploy_form(model))
        rows.append({"model": name, "input": size, "params": profile.params,
                     "paper_params": params, "macs": profile.macs, "paper_macs": macs,
                     "paper_top1": top1})
    return rows


def format_paper_table(rows):
    """`paper_table()` rows as a Markdown table."""
    lines = ["| model | input | params | paper params | MACs | paper MACs | paper top-1 |",
             "| --- | ---: | ---: | ---: | ---: | ---: | --- |"]
    def millions(value, digits):
        return "-" if value is None else f"{value / 1e6:.{digits}f}M"

    for row in rows:
        lines.append(
            f"| {row['model']} | {row['input']} | {row['params']:,} | "
            f"{millions(row['paper_params'], 2)} | {row['macs'] / 1e6:.2f}M | "
            f"{millions(row['paper_macs'], 1)} | {row['paper_top1']} |")
    return "\n".join(lines + ["", MACS_CONVENTION])


def models_table(cache=False):
    """The registered models as a Markdown table (docs/models.md; `ghostnet-profile --list`
    adds `cache=True`): name, family, input, trainable params and MACs (of the folded form as
    well, for models that `reparameterize` folds), and the published weights with their
    top-1 and licence, each marked "cached" when its converted file is in the cache
    (`cache=True`)."""
    import os

    from ghostnet_tf.models import registry
    from ghostnet_tf.weights import pretrained_weights_path

    def cached(name, tag):
        return cache and os.path.exists(pretrained_weights_path(name, tag))

    lines = ["| name | family | input | params | MACs | folded params | folded MACs | "
             "weights (top-1, licence) |",
             "| --- | --- | --- | ---: | ---: | ---: | ---: | --- |"]
    for entry in map(registry.model_entry, registry.list_models()):
        folded = (f"{entry.deploy_params:,} | {entry.deploy_macs / 1e6:.2f}M"
                  if entry.reparameterizable else "- | -")
        weights = ", ".join(
            f"{tag} ({published.top1}%, {published.license}"
            f"{', cached' if cached(entry.name, tag) else ''})"
            for tag, published in entry.weights.items()) or "-"
        shape = "x".join(str(size) for size in entry.input_shape)
        lines.append(f"| `{entry.name}` | {entry.family} | {shape} | {entry.params:,} | "
                     f"{entry.macs / 1e6:.2f}M | {folded} | {weights} |")
    return "\n".join(lines)


def weights_table():
    """Every published weight set as a Markdown table (docs/models.md): the model and its
    `weights=` tag, the published top-1 with the evaluation transform it was measured with
    and by whom, the licence, and where the file is downloaded from (in order of trial)."""
    from ghostnet_tf.models import registry

    lines = ["| model | weights= | top-1 | measured with | measured by | licence | sources |",
             "| --- | --- | ---: | --- | --- | --- | --- |"]
    for name in registry.list_models(pretrained=True):
        for tag, published in registry.model_entry(name).weights.items():
            transform = published.measured_with
            sources = "; ".join(f"<{source.published_url}>" for source in published.sources)
            lines.append(f"| `{name}` | {tag} | {published.top1}% | {transform.interpolation}, "
                         f"crop {transform.crop_pct} | {published.measured_by} | "
                         f"{published.license} | {sources} |")
    return "\n".join(lines)
