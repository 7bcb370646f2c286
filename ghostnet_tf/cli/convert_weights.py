"""`ghostnet-convert-weights`: the official PyTorch and timm GhostNet checkpoints as Keras
`.weights.h5` files."""
import argparse
import os
import sys


def build_parser():
    from ghostnet_tf.models.ghostnet import imagenet_weights_path

    parser = argparse.ArgumentParser(
        prog="ghostnet-convert-weights",
        description="Convert a PyTorch GhostNet checkpoint (the official release's "
                    "state_dict_73.98.pth, or timm's ghostnet_050/100/130 .pth, .bin or "
                    ".safetensors) to a Keras .weights.h5 file, by key names.")
    parser.add_argument("source", metavar="SRC", help="the PyTorch checkpoint")
    parser.add_argument("--width", type=float, required=True, choices=(0.5, 1.0, 1.3),
                        help="the checkpoint's width multiplier")
    parser.add_argument("-o", "--output",
                        help="the .weights.h5 file (default: the cache that "
                             f'GhostNet(weights="imagenet") reads, {imagenet_weights_path(1.0)} '
                             "for width 1.0)")
    return parser


def main(argv=None):
    args = build_parser().parse_args(argv)
    from ghostnet_tf.models.ghostnet import imagenet_weights_path
    from ghostnet_tf.weights import convert_checkpoint

    output = args.output or imagenet_weights_path(args.width)
    try:
        model = convert_checkpoint(args.source, args.width, output)
    except ValueError as error:
        print(f"ghostnet-convert-weights: error: {error}", file=sys.stderr)
        return 2
    classes = model.get_layer("classifier").units
    print(f"{args.source} -> {os.path.abspath(output)}: {model.name}, {classes} classes, "
          f"{len(model.weights)} variables")
    return 0


if __name__ == "__main__":
    sys.exit(main())
