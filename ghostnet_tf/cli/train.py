"""`train.py` / `ghostnet-train`: train a model of the library with Keras fit."""
import argparse
import sys


def build_parser():
    parser = argparse.ArgumentParser(
        prog="train.py",
        description="Train a model of the library from a YAML recipe (configs/*.yaml). "
                    "Rerunning the same command after a crash resumes the run.")
    parser.add_argument("--config", help="recipe file, e.g. configs/cifar10_ghost_resnet56.yaml")
    parser.add_argument("--set", dest="overrides", action="append", default=[],
                        metavar="SECTION.KEY=VALUE",
                        help="override one key (repeatable), e.g. --set optimizer.lr=0.2")
    parser.add_argument("--print-config", action="store_true",
                        help="print the resolved config and exit")
    return parser


def main(argv=None):
    args = build_parser().parse_args(argv)
    from ghostnet_tf.training.config import ConfigError, dump_config, load_config

    try:
        config = load_config(args.config, args.overrides)
    except ConfigError as error:
        print(f"train.py: error: {error}", file=sys.stderr)
        return 2
    if args.print_config:
        print(dump_config(config), end="")
        return 0
    from ghostnet_tf.training.trainer import train

    try:
        train(config)
    except (ValueError, FileNotFoundError) as error:
        print(f"train.py: error: {error}", file=sys.stderr)
        return 2
    except FloatingPointError as error:
        print(f"train.py: {error}", file=sys.stderr)
        return 3
    return 0


if __name__ == "__main__":
    sys.exit(main())
