"""PaddleClas's GhostNet (`GhostNet(design="paddleclas")`, the `_paddle` registry models) and
its `.pdparams` weights: converted logits against PaddleClas's own code run by paddle, the
parameter counts paddle gives, the published sets loaded in one line through a server on
127.0.0.1, and the unpickler that runs nothing but numpy's array rebuilding.

paddle crashes when imported after TensorFlow, so PaddleClas's model runs in a process of its
own (reference/paddle_ghostnet.py), which writes the .pdparams file and its logits.
"""
import os
import pickle
import subprocess
import sys

import keras
import numpy as np
import pytest

from ghostnet_tf.checks import ArgumentError
from ghostnet_tf.cli import convert_weights
from ghostnet_tf.models import registry
from ghostnet_tf.weights import pretrained_weights_path, read_pdparams

WIDTHS = {"ghostnet_050_paddle": 0.5, "ghostnet_100_paddle": 1.0, "ghostnet_130_paddle": 1.3}
# An even and an odd input size: padding and pooling must agree at both.
SIZES = (224, 225)


def _paddleclas_run(folder, width, seed, sizes=SIZES):
    """PaddleClas's GhostNet at `width` with random weights (`seed`): its .pdparams file and
    {"params", "images_<size>", "logits_<size>"}."""
    folder.mkdir(parents=True, exist_ok=True)
    subprocess.run([sys.executable, "-m", "reference.paddle_ghostnet", "--width", str(width),
                    "--seed", str(seed), "--sizes", ",".join(map(str, sizes)),
                    "--out", str(folder)], check=True, capture_output=True, timeout=300,
                   cwd=os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
    return folder / "model.pdparams", dict(np.load(folder / "reference.npz"))


@pytest.fixture(scope="module")
def paddleclas(tmp_path_factory):
    """{(name, tag): (.pdparams file, reference arrays)} for every published weight set, each
    from another seed so that a set served at another's address would show."""
    runs = {}
    for seed, (name, tag) in enumerate(_published(), start=1):
        folder = tmp_path_factory.mktemp(f"{name}_{tag}")
        runs[(name, tag)] = _paddleclas_run(folder, WIDTHS[name], seed,
                                            SIZES if seed == 1 else SIZES[:1])
    return runs


def _published():
    return [(name, tag) for name in registry.list_models("ghostnet_paddle", pretrained=True)
            for tag in registry.model_entry(name).weights]


def _logits(model, images):
    return keras.ops.convert_to_numpy(model(images.transpose(0, 2, 3, 1), training=False))


def _assert_paddle_logits(model, reference, size):
    expected = reference[f"logits_{size}"]
    scale = np.abs(expected).max()
    assert scale > 0.05 and expected.std() > 0.01  # logits that say something
    difference = np.abs(_logits(model, reference[f"images_{size}"]) - expected).max()
    assert difference <= 1e-4 * scale, (size, difference, scale)


def test_the_published_sets_are_paddleclas_files():
    assert _published() == [("ghostnet_050_paddle", "imagenet"),
                            ("ghostnet_100_paddle", "imagenet"),
                            ("ghostnet_130_paddle", "imagenet"),
                            ("ghostnet_130_paddle", "imagenet_ssld")]
    entry = registry.model_entry("ghostnet_130_paddle")
    assert entry.weights["imagenet_ssld"].sources[0].url.endswith(
        "/dygraph/GhostNet_x1_3_ssld_pretrained.pdparams")
    assert not entry.weights["imagenet_ssld"].sources[0].needs_torch
    assert [entry.weights[tag].top1 for tag in ("imagenet", "imagenet_ssld")] == [75.7, 79.4]


@pytest.mark.parametrize("name, tag", _published())
def test_published_weights_load_in_one_line_and_give_paddleclas_logits(server, paddleclas,
                                                                        name, tag):
    pdparams, reference = paddleclas[(name, tag)]
    source = registry.model_entry(name).weights[tag].sources[0]
    server.serve_release(source.release, pdparams.read_bytes())
    for size in SIZES:
        if f"logits_{size}" not in reference:
            continue
        model = registry.get_model(name, weights=tag, input_shape=(size, size, 3),
                                   include_preprocessing=False, classifier_activation=None)
        _assert_paddle_logits(model, reference, size)
    assert os.path.isfile(pretrained_weights_path(name, tag))
    assert server.requests == [("GET", f"/{source.release}")]  # once: then the cache


def test_parameter_counts_are_paddles(paddleclas, tmp_path):
    counts = {name: int(reference["params"]) for (name, _), (_, reference) in paddleclas.items()}
    assert set(counts) == set(WIDTHS)
    for name, params in counts.items():
        model = registry.get_model(name)
        assert sum(int(np.prod(v.shape)) for v in model.trainable_weights) == params
        assert registry.model_entry(name).params == params


def test_the_official_design_is_another_network(paddleclas):
    """The two designs differ where the docs say: a .pdparams file does not load into the
    official GhostNet, and the official squeeze-excite gate on PaddleClas's weights gives
    other logits."""
    pdparams, reference = paddleclas[("ghostnet_050_paddle", "imagenet")]
    with pytest.raises(ArgumentError, match=r"is a PaddlePaddle checkpoint \(PaddleClas\); "
                                            r"ghostnet_050 converts a PyTorch checkpoint"):
        registry.get_model("ghostnet_050", weights=pdparams)
    from ghostnet_tf.models import GhostNet

    model = GhostNet(0.5, design="paddleclas", weights=pdparams, include_preprocessing=False,
                     classifier_activation=None)
    _assert_paddle_logits(model, reference, 224)
    for block in [layer for layer in model.layers if layer.name.startswith("blocks_")]:
        if getattr(block, "se", None) is not None:
            block.se.gate_function = "hard_sigmoid"
    expected = reference["logits_224"]
    difference = np.abs(_logits(model, reference["images_224"]) - expected).max()
    assert difference > 1e-2 * np.abs(expected).max()


def test_ghostnet_convert_weights_takes_a_pdparams_file(paddleclas, tmp_path, monkeypatch):
    monkeypatch.setenv("KERAS_HOME", str(tmp_path / "keras"))
    pdparams, reference = paddleclas[("ghostnet_130_paddle", "imagenet_ssld")]
    assert convert_weights.main([str(pdparams), "--width", "1.3", "--tag", "imagenet_ssld"]) == 0
    cache = pretrained_weights_path("ghostnet_130_paddle", "imagenet_ssld")
    assert os.path.isfile(cache)
    model = registry.get_model("ghostnet_130_paddle", weights="imagenet_ssld",
                               include_preprocessing=False, classifier_activation=None)
    _assert_paddle_logits(model, reference, 224)
    # PyTorch's choice of weights in a training checkpoint means nothing here: said, not
    # ignored.
    assert convert_weights.main([str(pdparams), "--width", "1.3", "--checkpoint-key",
                                 "state_dict_ema", "-o", str(tmp_path / "x.weights.h5")]) == 2
    assert not (tmp_path / "x.weights.h5").exists()


class _Shell:
    """Unpickled, runs a shell command: what a malicious checkpoint holds."""

    def __init__(self, command):
        self.command = command

    def __reduce__(self):
        return os.system, (self.command,)


def test_a_pdparams_file_that_names_anything_but_numpy_runs_nothing(paddleclas, tmp_path):
    # paddle 3's files (protocol 4) and older paddle's (protocol 2) read alike.
    pdparams, _ = paddleclas[("ghostnet_050_paddle", "imagenet")]
    arrays = read_pdparams(pdparams)
    assert len(arrays) == 435 and arrays["fc_1.weight"].shape == (1280, 1000)
    (tmp_path / "old.pdparams").write_bytes(pickle.dumps(
        {key: value.astype("float64") for key, value in arrays.items()}, protocol=2))
    old = read_pdparams(tmp_path / "old.pdparams")
    assert all(np.array_equal(old[key], arrays[key]) for key in arrays)
    marker = tmp_path / "ran"
    evil = tmp_path / "evil.pdparams"
    evil.write_bytes(pickle.dumps({"conv1._conv.weight": np.zeros((8, 3, 3, 3), "float32"),
                                   "x": _Shell(f"touch {marker}")}, protocol=2))
    with pytest.raises(ArgumentError) as error:
        read_pdparams(evil)
    assert "\n" not in str(error.value)
    assert "names posix.system" in str(error.value) or "names os.system" in str(error.value)
    assert not marker.exists()
    # A numpy array of Python objects is refused too.
    objects = tmp_path / "objects.pdparams"
    objects.write_bytes(pickle.dumps({"a": np.array([1, "x"], dtype=object)}, protocol=2))
    with pytest.raises(ArgumentError, match="not an array of numbers|names"):
        read_pdparams(objects)


@pytest.mark.parametrize("mode", ["truncated", "html", "wrong_width"])
def test_a_bad_pdparams_download_never_lands_in_the_cache(server, paddleclas, mode):
    width_file, _ = paddleclas[("ghostnet_100_paddle" if mode == "wrong_width"
                                else "ghostnet_050_paddle", "imagenet")]
    source = registry.model_entry("ghostnet_050_paddle").weights["imagenet"].sources[0]
    server.serve_release(source.release, width_file.read_bytes(),
                         mode="ok" if mode == "wrong_width" else mode)
    cache = pretrained_weights_path("ghostnet_050_paddle")
    with pytest.raises(ArgumentError) as error:
        registry.get_model("ghostnet_050_paddle", weights="imagenet")
    message = str(error.value)
    assert "\n" not in message and source.url in message and cache in message
    expected = {"truncated": "is not a readable .pdparams file",
                "html": "is not a readable .pdparams file",
                "wrong_width": "shape(s) differ"}[mode]
    assert expected in message
    assert not os.path.exists(cache)
    assert not [file for file in os.listdir(os.path.dirname(cache)) if file.endswith(".h5")]


def test_a_paddleclas_preset_loads_in_keras_hub(paddleclas, tmp_path, monkeypatch):
    """ghostnet-presets writes PaddleClas's weights as a keras-hub preset: its portable
    backbone computes the clip gate with Keras' own layers."""
    import keras_hub

    from ghostnet_tf.cli import presets

    monkeypatch.setenv("KERAS_HOME", str(tmp_path / "keras"))
    pdparams, _ = paddleclas[("ghostnet_050_paddle", "imagenet")]
    assert convert_weights.main([str(pdparams), "--arch", "ghostnet_050_paddle"]) == 0
    assert presets.main([str(tmp_path / "out"), "--models", "ghostnet_050_paddle"]) == 0
    folder = tmp_path / "out" / "ghostnet_050_paddle_imagenet"
    card = (folder / "README.md").read_text()
    assert "license: apache-2.0" in card and "Published ImageNet top-1: 66.8%" in card
    classifier = keras_hub.models.ImageClassifier.from_preset(str(folder))
    model = registry.get_model("ghostnet_050_paddle", weights="imagenet")
    image = np.random.default_rng(6).uniform(0, 255, (1, 224, 224, 3)).astype("float32")
    np.testing.assert_allclose(classifier.predict(image, verbose=0),
                               model.predict(image, verbose=0), atol=1e-6)
