"""Feature maps of a Ghost module: the intrinsic maps, the ghost maps made from them, and the
same layer of the plain model, as PNG grids and TensorBoard images.

    ghostnet-fmaps --model ghost_vgg16.keras --image cat.png \
        --plain-model vgg16.keras --layer block2_conv1 -o fmaps.png

(`python -m ghostnet_tf.cli.fmaps` runs the same command.)

The paper's Figure 1 shows that many feature maps of a trained network come in pairs of
similar maps; a Ghost module makes the second of each pair with a cheap depthwise
convolution. The grids put ghost map c under the intrinsic map c it was made from.
"""
import os

import numpy as np

from ghostnet_tf.checks import ArgumentError


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
        raise ArgumentError("model", f"{model.name} has no Ghost module.")
    raise ArgumentError("layer", f"{name}: no Ghost module of that name; the model has "
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
        raise ArgumentError("layer", f"{outer.name}: its Ghost module has ratio 1, so no ghost "
                                     "maps.")
    return (keras.ops.convert_to_numpy(intrinsic)[0], keras.ops.convert_to_numpy(ghost)[0],
            outer.name)


def layer_feature_maps(model, image, layer_name):
    """The output of the layer `layer_name` of `model` for one image, (h, w, channels)."""
    import keras

    try:
        layer = model.get_layer(layer_name)
    except ValueError:
        raise ArgumentError("plain_layer", f"{layer_name}: no such layer in the plain model.") \
            from None
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


def draw_feature_maps(model, image, output, layer=None, plain_model=None, plain_layer=None,
                      maps=16, tensorboard=None):
    """Draw the feature maps of the Ghost module `layer` (default: the first) of the `.keras`
    file `model` for the image file `image` into the PNG `output`, beside the same layer
    (`plain_layer`, default: the same name) of the `.keras` file `plain_model`, and as
    TensorBoard images in `tensorboard`. Returns the name of the layer drawn."""
    from ghostnet_tf.loading import load_keras_model, read_image
    from ghostnet_tf.weights import KERAS_SUFFIX

    for argument, path in (("model", model), ("plain_model", plain_model)):
        if path is not None and not os.fspath(path).endswith(KERAS_SUFFIX):
            raise ArgumentError(argument, f"{path}: expected a .keras file.")
    ghost_model = load_keras_model(model)
    pixels = read_image(image, tuple(ghost_model.input_shape[1:]))
    intrinsic, ghost, name = ghost_feature_maps(ghost_model, pixels, layer)
    module, _ = find_ghost_module(ghost_model, name)
    plain = None
    if plain_model is not None:
        try:
            plain_keras = load_keras_model(plain_model)
        except ArgumentError as error:
            raise ArgumentError("plain_model", error.problem) from None
        plain = layer_feature_maps(plain_keras, pixels, plain_layer or name)
    panels = grids(intrinsic, ghost, module.ratio, plain, count=maps)
    save_png(panels, output, f"{os.path.basename(os.fspath(model))}: {name} on "
                             f"{os.path.basename(os.fspath(image))}")
    if tensorboard:
        write_tensorboard(panels, tensorboard)
    return name

