"""Feature maps of a Ghost module: the intrinsic maps, the ghost maps made from them, and the
same layer of the plain model, as PNG grids and TensorBoard images.

    python -m ghostnet_tf.visualize --model ghost_vgg16.keras --image cat.png \
        --plain-model vgg16.keras --layer block2_conv1 -o fmaps.png

The paper's Figure 1 shows that many feature maps of a trained network come in pairs of
similar maps; a Ghost module makes the second of each pair with a cheap depthwise
convolution. The grids put ghost map c under the intrinsic map c it was made from.
"""
import argparse
import os
import sys

import numpy as np


def find_ghost_module(model, name=None):
    """The GhostModule called `name` in `model` (top level, or the first Ghost module of a
    GhostBottleneck of that name), with the Keras layer whose input feeds it; the first
    Ghost module when `name` is None."""
    from ghostnet_tf.layers import GhostBottleneck, GhostModule

    for layer in model.layers:
        if name is not None and layer.name != name:
            continue
        if isinstance(layer, GhostModule):
            return layer, layer
        if isinstance(layer, GhostBottleneck):
            return layer.ghost1, layer
    found = [layer.name for layer in model.layers
             if isinstance(layer, (GhostModule, GhostBottleneck))]
    if not found:
        raise ValueError(f"--model {model.name} has no Ghost module.")
    raise ValueError(f"--layer {name}: no Ghost module of that name; the model has "
                     f"{', '.join(found[:8])}{', ...' if len(found) > 8 else ''}.")


def ghost_feature_maps(model, image, layer_name=None):
    """(intrinsic, ghost, module name) feature maps of one image (H, W, C) as numpy
    (h, w, channels) arrays."""
    import keras

    module, outer = find_ghost_module(model, layer_name)
    feed = keras.Model(model.input, outer.input)
    inputs = feed(image[None].astype("float32"), training=False)
    intrinsic, ghost = module.intrinsic_and_ghost_maps(inputs, training=False)
    if ghost is None:
        raise ValueError(f"--layer {outer.name}: its Ghost module has ratio 1, so no ghost maps.")
    return (keras.ops.convert_to_numpy(intrinsic)[0], keras.ops.convert_to_numpy(ghost)[0],
            outer.name)


def layer_feature_maps(model, image, layer_name):
    """The output of the layer `layer_name` of `model` for one image, (h, w, channels)."""
    import keras

    try:
        layer = model.get_layer(layer_name)
    except ValueError:
        raise ValueError(f"--plain-layer {layer_name}: no such layer in the plain model.") from None
    feed = keras.Model(model.input, layer.output)
    return keras.ops.convert_to_numpy(feed(image[None].astype("float32"), training=False))[0]


def mosaic(maps, columns=8, count=16, pad=2):
    """The first `count` maps (h, w, channels), each scaled to [0, 1] on its own, tiled
    `columns` wide with `pad` pixels of NaN (drawn white) between them: (H, W) float32."""
    maps = maps[..., :count]
    height, width, channels = maps.shape
    low = maps.min(axis=(0, 1), keepdims=True)
    span = np.maximum(maps.max(axis=(0, 1), keepdims=True) - low, 1e-12)
    maps = (maps - low) / span
    rows = -(-channels // columns)
    grid = np.full((rows * (height + pad) - pad, columns * (width + pad) - pad), np.nan,
                   np.float32)
    for index in range(channels):
        top, left = (index // columns) * (height + pad), (index % columns) * (width + pad)
        grid[top:top + height, left:left + width] = maps[..., index]
    return grid


def grids(intrinsic, ghost, ratio, plain=None, count=16, columns=8):
    """{title: mosaic}: intrinsic maps 0..count-1, the first ghost map of each, and the
    plain model's maps."""
    first_ghosts = ghost[..., :: max(ratio - 1, 1)][..., : intrinsic.shape[-1]]
    result = {"intrinsic maps (primary convolution)": mosaic(intrinsic, columns, count),
              "ghost maps (cheap depthwise, below their source)": mosaic(first_ghosts, columns,
                                                                          count)}
    if plain is not None:
        result["plain model, same layer"] = mosaic(plain, columns, count)
    return result


def save_png(panels, path, title):
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    from ghostnet_tf.atomic import write_atomically

    heights = [8 * grid.shape[0] / grid.shape[1] + 0.4 for grid in panels.values()]
    figure, axes = plt.subplots(len(panels), 1, figsize=(8, sum(heights) + 0.4), squeeze=False,
                                gridspec_kw={"height_ratios": heights})
    colors = matplotlib.colormaps["viridis"].with_extremes(bad="white")
    for axis, (name, grid) in zip(axes[:, 0], panels.items()):
        axis.imshow(grid, cmap=colors, vmin=0, vmax=1)
        axis.set_title(name, fontsize=9)
        axis.axis("off")
    figure.suptitle(title, fontsize=10)
    figure.tight_layout()
    write_atomically(path, lambda temporary: figure.savefig(temporary, dpi=120, format="png"))
    plt.close(figure)


def write_tensorboard(panels, log_dir, step=0):
    import tensorflow as tf

    with tf.summary.create_file_writer(log_dir).as_default():
        for name, grid in panels.items():
            tf.summary.image(name.split(" (")[0], grid[None, :, :, None], step=step)


def build_parser():
    parser = argparse.ArgumentParser(
        prog="python -m ghostnet_tf.visualize",
        description="PNG grids (and TensorBoard images) of the intrinsic and ghost feature "
                    "maps of a Ghost module for one image, beside the plain model's layer.")
    parser.add_argument("--model", required=True, help="a .keras file with Ghost modules")
    parser.add_argument("--image", required=True, help="a JPEG, PNG, BMP or GIF file")
    parser.add_argument("--layer", help="the Ghost module (or Ghost bottleneck) to show; "
                                        "default: the first")
    parser.add_argument("--plain-model", help="a .keras file of the plain model to compare")
    parser.add_argument("--plain-layer", help="its layer to show (default: --layer's name)")
    parser.add_argument("--maps", type=int, default=16, help="maps per grid")
    parser.add_argument("-o", "--output", default="fmaps.png", help="PNG file")
    parser.add_argument("--tensorboard", metavar="LOG_DIR", help="also write TensorBoard images")
    return parser


def run(args):
    from ghostnet_tf.cli.eval import load_keras_model
    from ghostnet_tf.cli.predict import load_image

    for flag, path in (("--model", args.model), ("--plain-model", args.plain_model)):
        if path is not None and not os.path.isfile(path):
            raise ValueError(f"{flag} {path}: no such file.")
        if path is not None and not path.endswith(".keras"):
            raise ValueError(f"{flag} {path}: expected a .keras file.")
    model = load_keras_model(args.model, None, None)
    image = load_image(args.image, tuple(model.input_shape[1:]), crop_pct=None)
    intrinsic, ghost, name = ghost_feature_maps(model, image, args.layer)
    module, _ = find_ghost_module(model, name)
    plain = None
    if args.plain_model:
        plain_model = load_keras_model(args.plain_model, None, None)
        plain = layer_feature_maps(plain_model, image, args.plain_layer or name)
    panels = grids(intrinsic, ghost, module.ratio, plain, count=args.maps)
    save_png(panels, args.output, f"{os.path.basename(args.model)}: {name} on "
                                  f"{os.path.basename(args.image)}")
    if args.tensorboard:
        write_tensorboard(panels, args.tensorboard)
    return name


def main(argv=None):
    args = build_parser().parse_args(argv)
    try:
        name = run(args)
    except (ValueError, FileNotFoundError) as error:
        print(f"ghostnet-fmaps: error: {error}", file=sys.stderr)
        return 2
    print(f"{name}: written {args.output}"
          + (f" and TensorBoard images in {args.tensorboard}" if args.tensorboard else ""))
    return 0


if __name__ == "__main__":
    sys.exit(main())
