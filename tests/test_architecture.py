"""The package's layering, checked by import-linter: imports point down the layers that
setup.cfg lists and docs/architecture.md draws, including imports inside functions."""
import configparser
import pathlib
import re

from importlinter.cli import lint_imports

REPO = pathlib.Path(__file__).resolve().parent.parent


def _layers(config):
    return [line.strip() for line in config["importlinter:contract:layers"]["layers"]
            .strip().splitlines()]


def test_imports_point_down_the_layers():
    assert lint_imports(config_filename=str(REPO / "setup.cfg"), no_cache=True) == 0


def test_a_reversed_layer_is_reported(tmp_path):
    # The checker sees the library's imports: with `weights` above `models` (which builds
    # on it), the same contract breaks.
    config = configparser.ConfigParser()
    config.read(REPO / "setup.cfg")
    layers = _layers(config)
    models, weights = layers.index("models"), layers.index("weights | data")
    layers[models], layers[weights] = layers[weights], layers[models]
    config["importlinter:contract:layers"]["layers"] = "\n" + "\n".join(layers)
    path = tmp_path / "reversed.cfg"
    with open(path, "w") as file:
        config.write(file)
    assert lint_imports(config_filename=str(path), no_cache=True) == 1


def test_the_architecture_diagram_lists_the_layers_in_order():
    config = configparser.ConfigParser()
    config.read(REPO / "setup.cfg")
    text = (REPO / "docs" / "architecture.md").read_text()
    diagram = re.search(r"## The code, layer by layer\n.*?```\n(.*?)```", text, re.S)[1]
    # "ghostnet_tf/export/folder.py" is the layer export.folder, "ghostnet_tf/cli/" cli.
    drawn = [[re.sub(r"(\.py|/)$", "", path).replace("/", ".")
              for path in re.findall(r"ghostnet_tf/(\S+)", line)]
             for line in diagram.splitlines() if line.startswith("ghostnet_tf/")]
    assert drawn == [[name.strip() for name in layer.split("|")] for layer in _layers(config)]
