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
                        help="list the registered models with their input, params, MACs and "
                             "published weights, marking those in the cache (a Markdown "
                             "table, as in docs/models.md)")
    return parser


def run(args):
    from ghostnet_tf import profile

    if args.list:
        import os

        from ghostnet_tf.models import registry
        from ghostnet_tf.weights import pretrained_weights_path
        print(profile.models_table(cache=True))
        published = [pretrained_weights_path(name, tag)
                     for name in registry.list_models(pretrained=True)
                     for tag in registry.model_entry(name).weights]
        cached = sum(os.path.exists(path) for path in published)
        print(f"\n{cached} of {len(published)} published weight sets are cached in "
              f"{os.path.dirname(published[0])}"
              + ("" if cached else ": none yet. weights=\"imagenet\" downloads one on first "
                 "use; ghostnet-convert-weights converts a checkpoint you have."))
        return 0
    if args.paper_table:
        rows = profile.paper_table()
        print(json.dumps(rows, indent=2) if args.format == "json"
              else profile.format_paper_table(rows))
        return 0
    if args.model is None:
        raise ValueError("give a MODEL, --list or --paper-table")
    from ghostnet_tf.loading import model_by_name_or_file
    model = model_by_name_or_file(args.model, args.input_size, args.classes)
    result = profile.profile_model(model, input_size=args.input_size)
    print(json.dumps(result.to_dict(), indent=2) if args.format == "json"
          else profile.format_profile(result))
    return 0


def main(argv=None):
    common.start_backend("ghostnet-profile")
    args = build_parser().parse_args(argv)
    return common.run("ghostnet-profile", run, args,
                      {"model": "MODEL", "input_size": "--input-size"})


if __name__ == "__main__":
    sys.exit(main())
