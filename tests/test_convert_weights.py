import keras
import numpy as np
import pytest
import torch

from ghostnet_tf.cli import convert_weights as convert_cli
from ghostnet_tf.cli import predict as predict_cli
from ghostnet_tf.imagenet import IMAGENET_CLASSES, IMAGENET_WNIDS
from ghostnet_tf.models import GhostNet
from ghostnet_tf.weights import read_state_dict
from reference.torch_ghostnet import random_ghostnet


def _save(model, path):
    """A checkpoint file as the official release (.pth) or timm (.safetensors) ships it."""
    if str(path).endswith(".safetensors"):
        from safetensors.numpy import save_file
        save_file({k: v.numpy() for k, v in model.state_dict().items()}, str(path))
    else:
        torch.save(model.state_dict(), path)


@pytest.mark.parametrize("width, suffix", [(0.5, "safetensors"), (1.0, "pth"),
                                           (1.3, "safetensors")])
def test_converted_weights_give_pytorchs_logits(tmp_path, width, suffix):
    reference = random_ghostnet(width)
    source = tmp_path / f"ghostnet.{suffix}"
    _save(reference, source)
    output = tmp_path / "converted.weights.h5"
    assert convert_cli.main([str(source), "--width", str(width), "-o", str(output)]) == 0
    model = GhostNet(width=width, weights=output, include_preprocessing=False,
                     classifier_activation=None)
    images = np.random.default_rng(1).normal(size=(2, 3, 224, 224)).astype("float32")
    with torch.no_grad():
        expected = reference(torch.from_numpy(images)).numpy()
    actual = keras.ops.convert_to_numpy(model(images.transpose(0, 2, 3, 1), training=False))
    assert np.abs(expected).max() > 2.0  # logits that say something
    np.testing.assert_allclose(actual, expected, atol=1e-4, rtol=0)


@pytest.mark.slow
def test_safetensors_are_read_without_torch(tmp_path):
    import subprocess
    import sys
    _save(random_ghostnet(0.5), tmp_path / "g.safetensors")
    code = ("import sys; from ghostnet_tf.weights import read_state_dict; "
            f"state = read_state_dict({str(tmp_path / 'g.safetensors')!r}); "
            "assert state['conv_stem.weight'].shape == (8, 3, 3, 3); "
            "assert 'torch' not in sys.modules, 'torch was imported'")
    subprocess.run([sys.executable, "-c", code], check=True)


def test_reader_unwraps_nested_and_data_parallel_checkpoints(tmp_path):
    state = random_ghostnet(0.5).state_dict()
    path = tmp_path / "wrapped.bin"
    torch.save({"state_dict": {f"module.{k}": v for k, v in state.items()}, "epoch": 3}, path)
    read = read_state_dict(path)
    assert "conv_stem.weight" in read and not any("num_batches" in k for k in read)
    np.testing.assert_array_equal(read["bn1.running_var"], state["bn1.running_var"].numpy())


def test_training_checkpoints_give_the_weights_asked_for(tmp_path, capsys):
    """An official-style .pth.tar with state_dict and state_dict_ema (and thop's counters):
    EMA weights by default, the raw ones on request, and an error for what is not there."""
    raw, ema = random_ghostnet(0.5).state_dict(), random_ghostnet(0.5).state_dict()
    ema = {**ema, "total_ops": torch.zeros(1), "conv_stem.total_params": torch.zeros(1)}
    path = tmp_path / "ck_ghostnet.pth.tar"
    torch.save({"state_dict": raw, "state_dict_ema": ema, "epoch": 449}, path)
    for key, expected in (("auto", ema), ("state_dict_ema", ema), ("state_dict", raw)):
        read = read_state_dict(path, key)
        np.testing.assert_array_equal(read["conv_stem.weight"],
                                      expected["conv_stem.weight"].numpy())
        assert not any("total_" in name for name in read)
    plain = tmp_path / "plain.pth"
    torch.save(raw, plain)
    assert convert_cli.main([str(plain), "--arch", "ghostnet_050", "--checkpoint-key",
                             "state_dict_ema", "-o", str(tmp_path / "x.weights.h5")]) == 2
    assert ("--checkpoint-key state_dict_ema is not in " + str(plain) +
            ", which holds a plain state_dict") in capsys.readouterr().err
    assert convert_cli.main([str(path), "--arch", "ghostnet_050", "--checkpoint-key",
                             "state_dict", "-o", str(tmp_path / "raw.weights.h5")]) == 0


def test_mismatches_are_listed(tmp_path, capsys):
    state = {k: v for k, v in random_ghostnet(0.5).state_dict().items()}
    path = tmp_path / "half.pth"
    torch.save(state, path)
    out = str(tmp_path / "x.weights.h5")
    assert convert_cli.main([str(path), "--width", "1.0", "-o", out]) == 2
    error = capsys.readouterr().err
    assert "shape(s) differ" in error and "conv_stem.weight: (8, 3, 3, 3)" in error
    state.pop("blocks.3.0.se.conv_reduce.bias")
    state["head.extra.weight"] = torch.zeros(3)
    torch.save(state, path)
    assert convert_cli.main([str(path), "--width", "0.5", "-o", out]) == 2
    error = capsys.readouterr().err
    assert "1 key(s) of ghostnet_050 missing" in error
    assert "blocks.3.0.se.conv_reduce.bias" in error and "head.extra.weight" in error
    assert convert_cli.main([str(tmp_path / "none.pth"), "--width", "0.5", "-o", out]) == 2
    assert "SRC" in capsys.readouterr().err
    assert convert_cli.main([str(path), "--width", "0.5", "-o", str(tmp_path / "x.h5")]) == 2
    assert "must end in .weights.h5" in capsys.readouterr().err
    assert not (tmp_path / "x.weights.h5").exists()


def test_imagenet_weights_come_from_the_cache_the_converter_fills(tmp_path, monkeypatch,
                                                                   capsys):
    monkeypatch.setenv("KERAS_HOME", str(tmp_path / "keras"))
    with pytest.raises(ValueError, match="ghostnet-convert-weights SRC --arch ghostnet_050"):
        GhostNet(width=0.5, weights="imagenet")
    source = tmp_path / "ghostnet_050.safetensors"
    reference = random_ghostnet(0.5)
    _save(reference, source)
    assert convert_cli.main([str(source), "--width", "0.5"]) == 0
    assert str(tmp_path / "keras" / "models" / "ghostnet_050_imagenet.weights.h5") in \
        capsys.readouterr().out
    full = GhostNet(width=0.5, weights="imagenet", include_preprocessing=False,
                    classifier_activation=None)
    stem = reference.conv_stem.weight.detach().numpy().transpose(2, 3, 1, 0)
    np.testing.assert_array_equal(full.get_layer("conv_stem").kernel, stem)
    # Without the top, or with new classes, everything but the classifier is loaded.
    backbone = GhostNet(width=0.5, weights="imagenet", include_top=False, pooling="avg")
    np.testing.assert_array_equal(backbone.get_layer("conv_stem").kernel, stem)
    five = GhostNet(width=0.5, weights=tmp_path / "keras" / "models" /
                    "ghostnet_050_imagenet.weights.h5", classes=5)
    np.testing.assert_array_equal(five.get_layer("blocks_9_conv").kernel,
                                  full.get_layer("blocks_9_conv").kernel)
    assert five.get_layer("classifier").kernel.shape == (1280, 5)
    # "imagenet" with other classes is the same: a new classifier on the ImageNet backbone.
    five = GhostNet(width=0.5, weights="imagenet", classes=5)
    np.testing.assert_array_equal(five.get_layer("conv_stem").kernel, stem)


def test_predict_names_imagenet_classes(tmp_path, capsys):
    import tensorflow as tf
    assert len(IMAGENET_CLASSES) == 1000 and IMAGENET_CLASSES[0].startswith("tench")
    assert IMAGENET_WNIDS[0] == "n01440764" and IMAGENET_WNIDS == tuple(sorted(IMAGENET_WNIDS))
    model = GhostNet(width=0.5, input_shape=(64, 64, 3))
    model.save(tmp_path / "ghostnet.keras")
    image = np.random.default_rng(0).integers(0, 255, (80, 96, 3), dtype=np.uint8)
    (tmp_path / "photo.jpg").write_bytes(tf.io.encode_jpeg(image).numpy())
    assert predict_cli.main(["--model", str(tmp_path / "ghostnet.keras"),
                             str(tmp_path / "photo.jpg")]) == 0
    lines = capsys.readouterr().out.splitlines()
    assert len(lines) == 6
    assert all(line.split("%", 1)[1].strip() in IMAGENET_CLASSES for line in lines[1:])
