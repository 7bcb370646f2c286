"""`ghostnet-presets`: a keras-hub preset folder for every set of published weights, ready to
publish in one go with `keras_hub.upload_preset`."""
import argparse
import os
import sys

from ghostnet_tf.checks import ArgumentError
from ghostnet_tf.cli import common


def build_parser():
    parser = argparse.ArgumentParser(
        prog="ghostnet-presets",
        description="Write a keras-hub preset folder (ImageClassifier, the portable backbone, "
                    "the evaluation preprocessing, metadata.json and a model card) for each "
                    "model and tag of published weights, into OUTPUT_DIR/<model>_<tag>. "
                    "Weights are downloaded as weights=TAG does.")
    parser.add_argument("output_dir", metavar="OUTPUT_DIR")
    parser.add_argument("--models", nargs="+", metavar="NAME",
                        help="only these models (default: every model with published weights)")
    parser.add_argument("--latency", metavar="JSON",
                        help="the LiteRT latencies for the model cards, as "
                             "benchmarks/accuracy_latency.py --json writes them "
                             "(docs/accuracy_latency.json)")
    return parser


def preset_folders(output_dir, names):
    """{(model, tag): the preset folder} of every published weight set of `names`."""
    from ghostnet_tf.models import model_entry

    return {(name, tag): os.path.join(output_dir, f"{name}_{tag}")
            for name in names for tag in model_entry(name).weights}


def read_latency(path):
    """(median ms {model: {"float32": ms, "int8": ms}} of one thread, where they were measured)
    from the JSON `benchmarks/accuracy_latency.py --json` writes."""
    from ghostnet_tf.atomic import read_json

    data = read_json(path)
    try:
        latency = {name: {kind: kinds[kind]["1"] for kind in kinds}
                   for name, kinds in data["median_ms"].items()}
        return latency, data["measured"]
    except (KeyError, TypeError, AttributeError):
        raise ArgumentError("latency", f"{path} is not a latency file written by "
                                       "benchmarks/accuracy_latency.py --json.") from None


def run(args):
    from ghostnet_tf.export.keras_hub_preset import ModelCard, save_preset
    from ghostnet_tf.models import get_model, list_models, model_entry

    published = list_models(pretrained=True)
    names = args.models or published
    unknown = [name for name in names if name not in published]
    if unknown:
        raise ArgumentError("models", f"{', '.join(unknown)} has no published weights; "
                                             f"expected some of {', '.join(published)}.")
    latency, measured = read_latency(args.latency) if args.latency else ({}, None)
    for (name, tag), folder in preset_folders(args.output_dir, names).items():
        model = get_model(name, weights=tag)
        card = ModelCard(tag, model_entry(name).weights[tag], latency.get(name), measured,
                         args.command)
        save_preset(model, folder, card=card)
        print(f"{name} ({tag}) -> {folder}")
    return 0


def main(argv=None):
    common.start_backend("ghostnet-presets")
    argv = sys.argv[1:] if argv is None else list(argv)
    args = build_parser().parse_args(argv)
    args.command = " ".join(["ghostnet-presets", *argv])  # for the model cards
    return common.run("ghostnet-presets", run, args,
                      {"output_dir": "OUTPUT_DIR", "models": "--models",
                       "latency": "--latency"})


if __name__ == "__main__":
    sys.exit(main())
