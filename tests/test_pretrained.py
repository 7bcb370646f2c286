"""weights="imagenet": download, verify, convert and cache, against a real HTTP server on
127.0.0.1 that serves random-weight checkpoints at the real hosts' URL paths (the hub's
through HF_ENDPOINT, the releases' through GHOSTNET_TF_RELEASES_URL). No test reaches any
other address."""
import io
import os
import subprocess
import sys

import huggingface_hub.constants
import keras
import numpy as np
import pytest
import torch
from safetensors.torch import save as safetensors_bytes

from ghostnet_tf.checks import ArgumentError
from ghostnet_tf.models import registry
from ghostnet_tf.profile import models_table
from ghostnet_tf.weights import pretrained_weights_path
from reference.torch_ghostnet import calibrated_ghostnet, random_ghostnet

VERSIONS = {"ghostnet": 1, "ghostnetv2": 2, "ghostnetv3": 3}


def _reference(name):
    entry = registry.model_entry(name)
    version = VERSIONS[entry.family]
    make = calibrated_ghostnet if version == 3 else random_ghostnet
    return make(entry.width, version=version)


def _timm_file(model):
    """The state_dict as timm publishes it: safetensors, GhostNetV3's branch BNs named bn1."""
    state = {(key.replace("bn.", "bn1.") if ".ghost" in key or ".dw_rpr_" in key else key):
             value.contiguous() for key, value in model.state_dict().items()}
    return safetensors_bytes(state)


def _release_file(raw, ema=None):
    """A training checkpoint as the official releases publish it (a .pth.tar pickle)."""
    buffer = io.BytesIO()
    checkpoint = {"state_dict": raw.state_dict(), "epoch": 449}
    if ema is not None:
        checkpoint["state_dict_ema"] = ema.state_dict()
    torch.save(checkpoint, buffer)
    return buffer.getvalue()


def _logits(model, images):
    return keras.ops.convert_to_numpy(model(images.transpose(0, 2, 3, 1), training=False))


def _torch_logits(reference, images):
    with torch.no_grad():
        return reference(torch.from_numpy(images)).numpy()


def _published(family=None):
    return [(name, tag) for name in registry.list_models(family, pretrained=True)
            for tag in registry.model_entry(name).weights]


def _pytorch_published():
    return [(name, tag) for name, tag in _published()
            if registry.model_entry(name).family in VERSIONS]


def test_every_published_weight_set_is_tested():
    """The PyTorch ones here, PaddleClas's in test_paddle_weights."""
    assert _pytorch_published() == [
        ("ghostnet_100", "imagenet"), ("ghostnetv2_100", "imagenet"),
        ("ghostnetv2_130", "imagenet"), ("ghostnetv2_160", "imagenet"),
        ("ghostnetv3_100", "imagenet"), ("ghostnetv3_100", "imagenet_ema")]
    assert sorted(set(_published()) - set(_pytorch_published())) == sorted(
        _published("ghostnet_paddle"))


@pytest.mark.parametrize("name, tag", _pytorch_published())
def test_published_weights_load_in_one_line(server, tmp_path, name, tag):
    """First use downloads from the weight set's first source, converts and caches; the
    logits are those of the PyTorch reference holding the served weights."""
    entry = registry.model_entry(name)
    source = entry.weights[tag].sources[0]
    reference = _reference(name)
    if source.hub_id is not None:
        server.serve_hub(source.hub_id, _timm_file(reference))
    else:  # GhostNetV3's EMA weights: the release file's state_dict_ema
        other = calibrated_ghostnet(1.0, version=3, seed=7)
        server.serve_release(source.release, _release_file(other, ema=reference))
    model = registry.get_model(name, weights=tag, include_preprocessing=False,
                               classifier_activation=None)
    images = np.random.default_rng(1).normal(size=(2, 3, 224, 224)).astype("float32")
    expected = _torch_logits(reference, images)
    assert np.abs(expected).max() > 2.0  # logits that say something
    np.testing.assert_allclose(_logits(model, images), expected, atol=1e-4, rtol=0)
    assert os.path.isfile(pretrained_weights_path(name, tag))
    published = entry.weights[tag]
    assert (f"{tag} ({published.top1}%, {published.license}, cached)"
            in models_table(cache=True))
    if entry.reparameterizable:  # the deploy form folds the downloaded weights
        deployed = registry.get_model(name, weights=tag, deploy=True,
                                      include_preprocessing=False, classifier_activation=None)
        np.testing.assert_allclose(_logits(deployed, images), expected, atol=1e-4, rtol=0)


def test_the_cache_is_read_without_the_network(server):
    reference = random_ghostnet(1.0)
    server.serve_hub("timm/ghostnet_100.in1k", _timm_file(reference))
    first = registry.get_model("ghostnet_100", weights="imagenet")
    asked = len(server.requests)
    server.stop()
    second = registry.get_model("ghostnet_100", weights="imagenet")
    assert len(server.requests) == asked  # nothing was asked for
    np.testing.assert_array_equal(second.get_layer("conv_stem").kernel,
                                  first.get_layer("conv_stem").kernel)
    # Fine-tuning from the cache: everything but the classifier.
    five = registry.get_model("ghostnet_100", weights="imagenet", classes=5)
    np.testing.assert_array_equal(five.get_layer("blocks_9_conv").kernel,
                                  first.get_layer("blocks_9_conv").kernel)


def test_the_release_is_the_fallback_where_the_hub_cannot_be_reached(server, capsys):
    """The hub answers 404 for ghostnetv2_100: the official release file, the same weights
    (its state_dict, as timm converted it), is read instead."""
    reference = random_ghostnet(1.0, version=2)
    release = registry.model_entry("ghostnetv2_100").weights["imagenet"].sources[1].release
    server.serve_release(release, _release_file(reference, ema=random_ghostnet(1.0, version=2,
                                                                                 seed=3)))
    model = registry.get_model("ghostnetv2_100", weights="imagenet",
                               include_preprocessing=False, classifier_activation=None)
    images = np.random.default_rng(1).normal(size=(1, 3, 224, 224)).astype("float32")
    np.testing.assert_allclose(_logits(model, images), _torch_logits(reference, images),
                               atol=1e-4, rtol=0)
    assert f"Downloading data from {server.url}/{release}" in capsys.readouterr().out


def _hub_cache_files(tmp_path):
    return [os.path.join(folder, file) for folder, _, files in os.walk(tmp_path / "hub")
            for file in files if "blobs" in folder or "snapshots" in folder]


@pytest.mark.parametrize("mode", ["truncated", "html", "wrong_width", "drop"])
def test_a_bad_download_never_lands_in_the_cache(server, tmp_path, mode):
    served = random_ghostnet(0.5 if mode == "wrong_width" else 1.0)
    server.serve_hub("timm/ghostnet_100.in1k", _timm_file(served),
                     mode="ok" if mode == "wrong_width" else mode)
    cache = pretrained_weights_path("ghostnet_100")
    url = f"{server.url}/timm/ghostnet_100.in1k/resolve/main/model.safetensors"
    with pytest.raises(ArgumentError) as error:
        registry.get_model("ghostnet_100", weights="imagenet")
    message = str(error.value)
    assert "\n" not in message and url in message
    expected = {"truncated": "SHA-256", "html": "SHA-256", "wrong_width": "shape(s) differ",
                # A cut connection is a failed download: the release is tried next (404 here).
                "drop": "could not download"}[mode]
    assert expected in message and cache in message
    assert not os.path.exists(cache)
    assert not _hub_cache_files(tmp_path)
    assert not [file for file in os.listdir(os.path.dirname(cache))
                if file.endswith(".h5")]


def test_an_html_page_from_a_release_never_lands_in_the_cache(server):
    release = registry.model_entry("ghostnetv3_100").weights["imagenet_ema"].sources[0]
    server.serve_release(release.release, b"", mode="html")
    cache = pretrained_weights_path("ghostnetv3_100", "imagenet_ema")
    with pytest.raises(ArgumentError) as error:
        registry.get_model("ghostnetv3_100", weights="imagenet_ema")
    message = str(error.value)
    assert "\n" not in message and release.url in message and cache in message
    assert "is not a checkpoint of ghostnetv3_100: " in message
    assert not os.path.exists(cache)


def test_without_a_network_the_error_says_the_manual_way(server, monkeypatch):
    server.stop()
    monkeypatch.setattr(huggingface_hub.constants, "HF_HUB_OFFLINE", True)
    cache = pretrained_weights_path("ghostnet_100")
    with pytest.raises(ArgumentError) as error:
        registry.get_model("ghostnet_100", weights="imagenet")
    message = str(error.value)
    sources = registry.model_entry("ghostnet_100").weights["imagenet"].sources
    assert "\n" not in message and "ghostnet_100" in message
    assert all(source.url in message for source in sources)
    assert f"ghostnet-convert-weights FILE --arch ghostnet_100 -o {cache}" in message


def test_a_host_that_does_not_resolve_is_said_at_once_and_leaves_the_cache_clean(
        server, monkeypatch):
    monkeypatch.setenv("HF_ENDPOINT", "http://hub.invalid")
    monkeypatch.setenv("GHOSTNET_TF_RELEASES_URL", "http://releases.invalid")

    def no_download(*args, **kwargs):
        raise AssertionError("no download is tried for a host that does not resolve")
    monkeypatch.setattr(huggingface_hub, "hf_hub_download", no_download)
    with pytest.raises(ArgumentError, match=r"hub\.invalid does not resolve: no network\?\) or "
                                            r"http://releases\.invalid/.* \(releases\.invalid "
                                            r"does not resolve"):
        registry.get_model("ghostnet_100", weights="imagenet")
    cache = os.path.dirname(pretrained_weights_path("ghostnet_100"))
    assert os.listdir(cache) == [".locks"]  # no lock file, no partial file among the weights


def test_profile_list_says_what_is_cached(server, capsys):
    from ghostnet_tf.cli import profile as profile_cli

    published = len(_published())
    assert profile_cli.main(["--list"]) == 0
    folder = os.path.dirname(pretrained_weights_path("ghostnet_100"))
    assert capsys.readouterr().out.splitlines()[-1].startswith(
        f"0 of {published} published weight sets are cached in {folder}: none yet.")
    os.makedirs(folder)
    registry.get_model("ghostnet_050").save_weights(  # any file there counts as cached
        pretrained_weights_path("ghostnet_100"))
    assert profile_cli.main(["--list"]) == 0
    assert capsys.readouterr().out.splitlines()[-1] == (
        f"1 of {published} published weight sets are cached in {folder}")


def test_unknown_tags_and_models_without_weights_are_named(server):
    with pytest.raises(ArgumentError, match='"imagenet_ema": ghostnet_100 has no published '
                                            'weights of that name'):
        registry.get_model("ghostnet_100", weights="imagenet_ema")
    with pytest.raises(ArgumentError, match="ghostnet_050 has no published weights"):
        registry.get_model("ghostnet_050", weights="imagenet")
    assert not server.requests


def test_checkpoint_files_convert_on_the_fly(tmp_path):
    reference = random_ghostnet(0.5)
    images = np.random.default_rng(1).normal(size=(1, 3, 224, 224)).astype("float32")
    expected = _torch_logits(reference, images)
    (tmp_path / "timm.safetensors").write_bytes(_timm_file(reference))
    (tmp_path / "ck.pth.tar").write_bytes(_release_file(random_ghostnet(0.5, seed=4),
                                                        ema=reference))
    for file in ("timm.safetensors", "ck.pth.tar"):
        model = registry.get_model("ghostnet_050", weights=tmp_path / file,
                                   include_preprocessing=False, classifier_activation=None)
        np.testing.assert_allclose(_logits(model, images), expected, atol=1e-4, rtol=0)
    with pytest.raises(ArgumentError, match="ck.pth.tar does not fit ghostnet_100"):
        registry.get_model("ghostnet_100", weights=tmp_path / "ck.pth.tar")
    # An unreadable file and GhostNetV3's folded form: said of `weights`, in one line each.
    (tmp_path / "cut.safetensors").write_bytes(_timm_file(reference)[:100])
    with pytest.raises(ArgumentError, match=r"^`weights` .*cut.safetensors is not a readable "
                                            r"\.safetensors file"):
        registry.get_model("ghostnet_050", weights=tmp_path / "cut.safetensors")
    from safetensors.numpy import save_file

    save_file({"blocks.0.0.ghost1.primary_conv.0.bias": np.zeros(8, "float32"),
               "classifier.weight": np.zeros((1000, 1280), "float32")},
              tmp_path / "folded.safetensors")
    with pytest.raises(ArgumentError, match=r"^`weights` .*folded.safetensors holds "
                                            r"GhostNetV3's deploy \(folded\) form"):
        registry.get_model("ghostnetv3_050", weights=tmp_path / "folded.safetensors")


def test_two_processes_downloading_at_once_leave_one_whole_file(server, tmp_path):
    reference = random_ghostnet(1.0)
    server.serve_hub("timm/ghostnet_100.in1k", _timm_file(reference))
    code = ("import numpy as np; from ghostnet_tf.models import GhostNet100; m = GhostNet100("
            "weights='imagenet'); print(float(np.sum(m.get_layer('conv_stem').kernel)))")
    env = {**os.environ, "HF_HUB_CACHE": str(tmp_path / "hub"), "HF_HUB_OFFLINE": "0"}
    processes = [subprocess.Popen([sys.executable, "-c", code], env=env,
                                  stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
                 for _ in range(2)]
    outputs = [process.communicate(timeout=300) for process in processes]
    assert [process.returncode for process in processes] == [0, 0], outputs
    stem = reference.conv_stem.weight.detach().numpy().sum()
    for out, _ in outputs:
        assert abs(float(out.strip().splitlines()[-1]) - stem) < 1e-4
    folder = os.path.dirname(pretrained_weights_path("ghostnet_100"))
    assert [file for file in os.listdir(folder) if file.endswith(".h5")] == \
        ["ghostnet_100_imagenet.weights.h5"]
