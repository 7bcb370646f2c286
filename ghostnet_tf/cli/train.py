"""`train.py` / `ghostnet-train`: train a model of the library with Keras fit."""
import argparse
import os
import sys

from ghostnet_tf.cli import common

# Library arguments as the config keys that set them.
CONFIG_KEYS = {"data_dir": "data.data_dir", "labels_file": "data.labels_file",
               "name": "data.name", "batch_size": "data.batch_size",
               "image_size": "data.image_size", "weights": "model.weights",
               "skip_corrupt": "data.skip_corrupt"}
NAN_EXIT = 3


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


def run(args):
    from ghostnet_tf.training.config import dump_config, load_config

    config = load_config(args.config, args.overrides)
    if args.print_config:
        print(dump_config(config), end="")
        return 0
    common.start_backend("train.py")
    from ghostnet_tf.training.callbacks import exit_status
    from ghostnet_tf.training.trainer import TrainingInterrupted, train

    try:
        train(config, exit_on_second_signal=True)
    except FloatingPointError as error:
        print(f"train.py: {error}", file=sys.stderr)
        return NAN_EXIT
    except TrainingInterrupted as stop:
        print(f"train.py: {stop}", file=sys.stderr)
        # Everything is written. Leave without Python's clean-up: tf.data's background
        # threads can hold the cut fit's input pipeline for up to a minute before it is
        # freed (measured 7 to 41 s after the message on the README's recipe).
        sys.stdout.flush()
        sys.stderr.flush()
        os._exit(exit_status(stop.signum))
    return 0


def main(argv=None):
    args = build_parser().parse_args(argv)
    return common.run("train.py", run, args, CONFIG_KEYS)


if __name__ == "__main__":
    sys.exit(main())
