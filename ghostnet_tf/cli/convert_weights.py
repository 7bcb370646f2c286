"""`ghostnet-convert-weights`: the official PyTorch and timm checkpoints as Keras
`.weights.h5` files."""
import argparse
import os
import sys

from ghostnet_tf.cli import common


def build_parser():
    from ghostnet_tf.models import convertible_models, registry
    from ghostnet_tf.weights import CHECKPOINT_KEYS, pretrained_weights_path

    names = convertible_models()
    widths = [registry.model_entry(name).width for name in registry.list_models("ghostnet")]
    parser = argparse.ArgumentParser(
        prog="ghostnet-convert-weights",
        description="Convert a PyTorch checkpoint of the official releases (e.g. "
                    "ghostnet_1x.pth, ck_ghostnetv2_10.pth.tar) or of timm (.pth, .bin or "
                    ".safetensors) to a Keras .weights.h5 file, by key names: the manual way "
                    'of weights="imagenet", which downloads and converts by itself.')
    parser.add_argument("source", metavar="SRC", help="the PyTorch checkpoint")
    which = parser.add_mutually_exclusive_group(required=True)
    which.add_argument("--arch", choices=names, help="the checkpoint's model")
    which.add_argument("--width", type=float, choices=widths,
                       help="the width of a GhostNet (v1) checkpoint: --width 1.0 is "
                            "--arch ghostnet_100")
    parser.add_argument("--checkpoint-key", default="auto", choices=CHECKPOINT_KEYS,
                        help="which weights of a training checkpoint that holds both "
                             "(the official .pth.tar files): auto takes state_dict_ema, the "
                             "averaged weights the published accuracies are of, where present")
    parser.add_argument("-o", "--output",
                        help="the .weights.h5 file (default: the cache that "
                             'weights="imagenet" reads, '
                             f"{pretrained_weights_path('ghostnet_100')} for "
                             "ghostnet_100)")
    return parser


def run(args):
    from ghostnet_tf.models.ghostnet import convert_checkpoint, model_name
    from ghostnet_tf.weights import pretrained_weights_path

    name = args.arch or model_name(args.width)
    output = args.output or pretrained_weights_path(name)
    model = convert_checkpoint(args.source, name, output, args.checkpoint_key)
    classes = int(model.output_shape[-1])
    print(f"{args.source} -> {os.path.abspath(output)}: {model.name}, {classes} classes, "
          f"{len(model.weights)} variables")
    return 0


def main(argv=None):
    common.start_backend("ghostnet-convert-weights")
    args = build_parser().parse_args(argv)
    return common.run("ghostnet-convert-weights", run, args,
                      {"source": "SRC", "output": "-o", "model_name": "--arch",
                       "checkpoint_key": "--checkpoint-key"})


if __name__ == "__main__":
    sys.exit(main())
