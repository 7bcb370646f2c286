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
                    ".safetensors), or a PaddleClas .pdparams file (GhostNet_x1_3_ssld_"
                    "pretrained.pdparams), to a Keras .weights.h5 file, by key names: the "
                    'manual way of weights="imagenet", which downloads and converts by itself.')
    parser.add_argument("source", metavar="SRC", help="the checkpoint")
    which = parser.add_mutually_exclusive_group(required=True)
    which.add_argument("--arch", choices=names, help="the checkpoint's model")
    which.add_argument("--width", type=float, choices=widths,
                       help="the width of a GhostNet (v1) checkpoint: --width 1.0 is "
                            "--arch ghostnet_100, or ghostnet_100_paddle for a .pdparams "
                            "file")
    parser.add_argument("--checkpoint-key", default="auto", choices=CHECKPOINT_KEYS,
                        help="which weights of a training checkpoint that holds both "
                             "(the official .pth.tar files): auto takes state_dict_ema, the "
                             "averaged weights the published accuracies are of, where present")
    parser.add_argument("--tag", default="imagenet",
                        help="the weights= tag whose cache file is written when -o is not "
                             "given (imagenet_ssld for PaddleClas's distilled 1.3x)")
    parser.add_argument("-o", "--output",
                        help="the .weights.h5 file (default: the cache that "
                             'weights=TAG reads, '
                             f"{pretrained_weights_path('ghostnet_100')} for "
                             "ghostnet_100)")
    return parser


def run(args):
    from ghostnet_tf.models.ghostnet import convert_checkpoint, model_name
    from ghostnet_tf.weights import CHECKPOINT_FORMATS, pretrained_weights_path

    paddle = args.source.endswith(CHECKPOINT_FORMATS["paddle"].suffixes)
    name = args.arch or model_name(args.width, design="paddleclas" if paddle else "official")
    output = args.output or pretrained_weights_path(name, args.tag)
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
                       "checkpoint_key": "--checkpoint-key", "tag": "--tag"})


if __name__ == "__main__":
    sys.exit(main())
