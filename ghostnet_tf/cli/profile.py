"""`ghostnet-profile`: per-layer parameters and MACs of a model of the library or a `.keras` file."""
import argparse
import json
import os
import sys


def build_parser():
    from ghostnet_tf.models import MODELS

    parser = argparse.ArgumentParser(
        prog="ghostnet-profile",
        description="Per-layer output shapes, parameters and MACs (multiply-accumulates) of a "
                    "model, descending into Ghost modules.")
    parser.add_argument("model", nargs="?",
                        help=f"a model name ({', '.join(MODELS)}) or a .keras file")
    parser.add_argument("--input-size", type=int, default=None,
                        help="height = width of the input (default: the model's own)")
    parser.add_argument("--classes", type=int, default=None,
                        help="number of classes of a named model (default: its own)")
    parser.add_argument("--format", choices=("table", "json"), default="table")
    parser.add_argument("--paper-table", action="store_true",
                        help="print our counts beside the paper's for its CIFAR and ImageNet "
                             "models, and exit")
    return parser


def load_model(spec, input_size=None, classes=None):
    """Build a named model of the library, or load a `.keras` file."""
    import keras

    from ghostnet_tf.models import MODELS, get_model

    if spec in MODELS:
        kwargs = {}
        if input_size is not None:
            kwargs["input_shape"] = (input_size, input_size, 3)
        if classes is not None:
            kwargs["classes"] = classes
        return get_model(spec, **kwargs)
    if not spec.endswith(".keras"):
        raise ValueError(f"MODEL {spec!r} is neither a model name ({', '.join(MODELS)}) "
                         "nor a .keras file.")
    if not os.path.isfile(spec):
        raise ValueError(f"MODEL file {spec!r} does not exist.")
    import ghostnet_tf.layers  # noqa: F401  registers the custom layers for loading
    return keras.saving.load_model(spec, compile=False)


def main(argv=None):
    args = build_parser().parse_args(argv)
    from ghostnet_tf import profile

    try:
        if args.paper_table:
            rows = profile.paper_table()
            print(json.dumps(rows, indent=2) if args.format == "json"
                  else profile.format_paper_table(rows))
            return 0
        if args.model is None:
            raise ValueError("give a MODEL, or --paper-table")
        if args.input_size is not None and args.input_size < 1:
            raise ValueError(f"--input-size must be a positive integer, got {args.input_size}")
        model = load_model(args.model, args.input_size, args.classes)
        result = profile.profile_model(model, input_size=args.input_size)
    except ValueError as error:
        print(f"ghostnet-profile: error: {error}", file=sys.stderr)
        return 2
    if args.format == "json":
        print(json.dumps(result.to_dict(), indent=2))
    else:
        print(profile.format_profile(result))
    return 0


if __name__ == "__main__":
    sys.exit(main())
