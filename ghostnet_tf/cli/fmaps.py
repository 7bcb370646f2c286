"""`ghostnet-fmaps` (also `python -m ghostnet_tf.cli.fmaps`): pictures of a Ghost module's
intrinsic and ghost feature maps for one image, beside the plain model's layer."""
import argparse
import sys

from ghostnet_tf.cli import common


def build_parser():
    parser = argparse.ArgumentParser(
        prog="ghostnet-fmaps",
        description="PNG grids (and TensorBoard images) of the intrinsic and ghost feature "
                    "maps of a Ghost module for one image, beside the plain model's layer.")
    parser.add_argument("--model", required=True, help="a .keras file with Ghost modules")
    parser.add_argument("--image", required=True, help="a JPEG, PNG, BMP or GIF file")
    parser.add_argument("--layer", help="the Ghost module (or Ghost bottleneck) to show; "
                                        "default: the first")
    parser.add_argument("--plain-model", help="a .keras file of the plain model to compare")
    parser.add_argument("--plain-layer", help="its layer to show (default: --layer's name)")
    parser.add_argument("--maps", type=common.positive_int, default=16, help="maps per grid")
    parser.add_argument("-o", "--output", default="fmaps.png", help="PNG file")
    parser.add_argument("--tensorboard", metavar="LOG_DIR", help="also write TensorBoard images")
    return parser


def run(args):
    from ghostnet_tf.visualize import draw_feature_maps

    name = draw_feature_maps(args.model, args.image, args.output, args.layer, args.plain_model,
                             args.plain_layer, args.maps, args.tensorboard)
    print(f"{name}: written {args.output}"
          + (f" and TensorBoard images in {args.tensorboard}" if args.tensorboard else ""))
    return 0


def main(argv=None):
    common.start_backend("ghostnet-fmaps")
    args = build_parser().parse_args(argv)
    return common.run("ghostnet-fmaps", run, args, {
        "image": "--image", "layer": "--layer", "plain_model": "--plain-model",
        "plain_layer": "--plain-layer"})


if __name__ == "__main__":
    sys.exit(main())
