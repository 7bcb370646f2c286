"""`ghostnet-profile`: per-layer parameters and MACs of a model of the library or a `.keras` file."""
import argparse
import json
import sys

from ghostnet_tf.cli import common


def build_parser():
    parser = argparse.ArgumentParser(
        prog="ghostnet-profile",
        description="Per-layer output shapes, parameters and MACs (multiply-accumulates) of a "
                    "model, descending into Ghost modules.")
    parser.add_argument("model", nargs="?", help="a model name (see --list) or a .keras file")
    parser.add_argument("--input-size", type=common.positive_int, default=None,
                        help="height = width of the input (default: the model's own)")
    parser.add_argument("--classes", type=common.positive_int, default=None,
                        help="number of classes of a named model (default: its own)")
    parser.add_argument("--format", choices=("table", "json"), default="table")
    parser.add_argument("--paper-table", action="store_true",
                        help="print our counts beside the paper's for its CIFAR and ImageNet "
                             "models, and exit")
    parser.add_argument("--list", action="store_true",
                        help="list the registered models with their input, params and MACs")
    return parser


def load_model(spec, input_size=None, classes=None):
    """Build a registered model by name, or load a `.keras` file."""
    from ghostnet_tf.checks import ArgumentError
    from ghostnet_tf.loading import KERAS_SUFFIX, load_keras_model
    from ghostnet_tf.models import registry

    entry = registry.find_entry(spec)
    if entry is not None:
        kwargs = {}
        if input_size is not None:
            kwargs["input_shape"] = (input_size, input_size, entry.input_shape[-1])
        if classes is not None:
            kwargs["classes"] = classes
        return entry.build(**kwargs)
    if not spec.endswith(KERAS_SUFFIX):
        raise ArgumentError("model", f"{spec!r} is neither a model name "
                                     f"({', '.join(registry.list_models())}) nor a .keras file.")
    return load_keras_model(spec)


def format_model_list():
    from ghostnet_tf.models import registry

    lines = [f"{'name':<16} {'family':<19} {'input':<12} {'params':>11} {'MACs':>9}  weights"]
    for name in registry.list_models():
        entry = registry.model_entry(name)
        shape = "x".join(str(d) for d in entry.input_shape)
        lines.append(f"{name:<16} {entry.family:<19} {shape:<12} {entry.params:>11,} "
                     f"{entry.macs / 1e6:>8.2f}M  {', '.join(entry.weights) or '-'}")
    return "\n".join(lines)


def run(args):
    from ghostnet_tf import profile

    if args.list:
        print(format_model_list())
        return 0
    if args.paper_table:
        rows = profile.paper_table()
        print(json.dumps(rows, indent=2) if args.format == "json"
              else profile.format_paper_table(rows))
        return 0
    if args.model is None:
        raise ValueError("give a MODEL, --list or --paper-table")
    model = load_model(args.model, args.input_size, args.classes)
    result = profile.profile_model(model, input_size=args.input_size)
    print(json.dumps(result.to_dict(), indent=2) if args.format == "json"
          else profile.format_profile(result))
    return 0


def main(argv=None):
    common.quiet_tensorflow()
    args = build_parser().parse_args(argv)
    return common.run("ghostnet-profile", run, args,
                      {"model": "MODEL", "input_size": "--input-size"})


if __name__ == "__main__":
    sys.exit(main())
