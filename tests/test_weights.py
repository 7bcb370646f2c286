import math
import pathlib

import pytest

from ghostnet_tf import GhostNet, weights
from ghostnet_tf.checks import ArgumentError
from ghostnet_tf.weights import official_key, official_keys


def test_every_variable_has_one_official_key():
    model = GhostNet(width=1.0)
    keys = official_keys(model)
    assert len(keys) == len(model.weights) == 432
    # The official state_dict has 5,182,508 parameters plus the BN buffers.
    trainable = sum(math.prod(v.shape) for v in keys.values() if v.trainable)
    assert trainable == 5_182_508
    assert "blocks.3.0.se.conv_reduce.weight" in keys
    assert "blocks.1.0.shortcut.3.running_var" in keys
    assert "blocks.9.0.bn1.running_mean" in keys
    assert "classifier.weight" in keys and "conv_head.bias" in keys


@pytest.mark.parametrize("path, key", [
    ("conv_stem/kernel", "conv_stem.weight"),
    ("bn1/gamma", "bn1.weight"),
    ("blocks_6_4/ghost1/primary_bn/moving_mean", "blocks.6.4.ghost1.primary_conv.1.running_mean"),
    ("blocks_6_4/ghost2/cheap_conv/kernel", "blocks.6.4.ghost2.cheap_operation.0.weight"),
    ("blocks_7_0/shortcut_dw_bn/beta", "blocks.7.0.shortcut.1.bias"),
    ("blocks_9_conv/kernel", "blocks.9.0.conv.weight"),
])
def test_official_key(path, key):
    assert official_key(path) == key


def test_official_key_rejects_foreign_paths():
    with pytest.raises(ValueError, match="not a GhostNet variable"):
        official_key("dense/weird_variable")


@pytest.mark.parametrize("value, kind", [
    ("imagenet", weights.TAG), ("imagenet_ema", weights.TAG),
    ("runs/a/best.keras", weights.KERAS_FILE), ("a.weights.h5", weights.WEIGHTS_FILE),
    ("ghostnet_1x.pth", weights.CHECKPOINT), ("ck_ghostnetv2_10.pth.tar", weights.CHECKPOINT),
    ("model.safetensors", weights.CHECKPOINT), ("pytorch_model.bin", weights.CHECKPOINT)])
def test_weights_kind_decides_by_the_name_alone(value, kind):
    assert weights.weights_kind(value) == kind
    assert weights.weights_kind(pathlib.Path(value)) == kind


@pytest.mark.parametrize("value", ["model.h5", "model.onnx", "folder/imagenet", "", 3])
def test_weights_kind_refuses_anything_else_naming_the_argument(value):
    with pytest.raises(ArgumentError, match=r"^`model.weights` must be a published tag"):
        weights.weights_kind(value, "model.weights")
