"""GhostNetV2: exact sizes, the official keys, PyTorch's nearest-upsampling rule, and
converted weights against an independent PyTorch re-implementation (reference/torch_ghostnet.py)."""
import keras
import numpy as np
import pytest
import torch
from torch.nn import functional as F

from ghostnet_tf.cli import convert_weights as convert_cli
from ghostnet_tf.layers import upsample_nearest_like_torch
from ghostnet_tf.models import GhostNetV2, registry
from ghostnet_tf.profile import profile_model
from ghostnet_tf.weights import official_keys
from reference.torch_ghostnet import random_ghostnet


# The official release's trainable parameters and multiply-accumulates at 224, 1000 classes.
@pytest.mark.parametrize("width, params, macs", [
    (1.0, 6_156_908, 167.048e6), (1.3, 8_960_404, 269.323e6), (1.6, 12_392_698, 398.607e6)])
def test_sizes_and_keys_are_the_official_releases(width, params, macs):
    model = GhostNetV2(width=width)
    profile = profile_model(model)
    assert profile.params == params
    assert profile.macs == pytest.approx(macs, rel=0.005)
    keys = official_keys(model)
    # 764 keys in the official state_dict, one num_batches_tracked per BN left out.
    batch_norms = sum(key.endswith(".running_mean") for key in keys)
    assert len(keys) + batch_norms == 764
    assert "blocks.8.3.ghost1.short_conv.2.weight" in keys
    assert "blocks.1.0.ghost1.short_conv.0.weight" not in keys  # the first two: no DFC
    assert model.name == f"ghostnetv2_{round(width * 100)}"
    assert registry.model_entry(model.name).params == params


@pytest.mark.parametrize("size_in, size_out", [(3, 7), (7, 15), (2, 4), (5, 11), (4, 7),
                                                (3, 5)])
def test_nearest_upsampling_follows_pytorchs_index_rule(size_in, size_out):
    x = np.random.default_rng(0).normal(size=(1, size_in, size_in + 1, 2)).astype("float32")
    expected = F.interpolate(torch.from_numpy(x.transpose(0, 3, 1, 2)),
                             size=(size_out, size_out + 2), mode="nearest").numpy()
    actual = keras.ops.convert_to_numpy(upsample_nearest_like_torch(x, size_out, size_out + 2))
    np.testing.assert_array_equal(actual, expected.transpose(0, 2, 3, 1))
    # Keras' own nearest resize picks other rows for odd sizes (the trap this avoids).
    if size_out % 2:
        keras_resize = keras.ops.convert_to_numpy(keras.ops.image.resize(
            x, (size_out, size_out + 2), interpolation="nearest"))
        assert not np.array_equal(keras_resize, actual)


@pytest.mark.parametrize("height, width", [(224, 224), (240, 240), (256, 320)])
def test_converted_weights_give_pytorchs_logits(tmp_path, height, width):
    # 240: 15x15 maps in stage 6; 256x320: 8x10 down to 4x5 and 2x2 odd pools elsewhere.
    reference = random_ghostnet(1.0, version=2)
    source = tmp_path / "ghostnetv2.pth"
    torch.save(reference.state_dict(), source)
    output = tmp_path / "v2.weights.h5"
    assert convert_cli.main([str(source), "--arch", "ghostnetv2_100", "-o", str(output)]) == 0
    model = GhostNetV2(width=1.0, weights=output, include_preprocessing=False,
                       classifier_activation=None, input_shape=(height, width, 3))
    images = np.random.default_rng(1).normal(size=(2, 3, height, width)).astype("float32")
    with torch.no_grad():
        expected = reference(torch.from_numpy(images)).numpy()
    actual = keras.ops.convert_to_numpy(model(images.transpose(0, 2, 3, 1), training=False))
    assert np.abs(expected).max() > 2.0  # logits that say something
    np.testing.assert_allclose(actual, expected, atol=1e-4, rtol=0)


def test_a_v1_checkpoint_given_as_v2_is_refused(tmp_path, capsys):
    source = tmp_path / "v1.pth"
    torch.save(random_ghostnet(1.0).state_dict(), source)
    assert convert_cli.main([str(source), "--arch", "ghostnetv2_100",
                             "-o", str(tmp_path / "x.weights.h5")]) == 2
    error = capsys.readouterr().err
    # 14 DFC branches of 15 variables each (num_batches_tracked is not one).
    assert "210 key(s) of ghostnetv2_100 missing" in error and "short_conv" in error


def test_feature_pyramid_and_a_builtin_ops_tflite(tmp_path):
    from ghostnet_tf.export import (TFLitePredictor, convert_tflite, export_saved_model,
                                    flex_ops)
    from ghostnet_tf.models import feature_pyramid

    shapes = {level: tuple(tensor.shape) for level, tensor in feature_pyramid(
        GhostNetV2(include_top=False))(np.zeros((1, 224, 224, 3), "float32")).items()}
    assert shapes == {"P2": (1, 56, 56, 24), "P3": (1, 28, 28, 40),
                      "P4": (1, 14, 14, 112), "P5": (1, 7, 7, 960)}
    # 96x96: the last stage pools 3x3 to 1x1 and upsamples 1 -> 3, an odd size.
    model = GhostNetV2(input_shape=(96, 96, 3), classes=10)
    export_saved_model(model, str(tmp_path / "sm"))
    content = convert_tflite(str(tmp_path / "sm"), "float32")
    assert flex_ops(content) == []
    (tmp_path / "v2.tflite").write_bytes(content)
    images = np.random.default_rng(0).uniform(0, 255, (2, 96, 96, 3)).astype("float32")
    np.testing.assert_allclose(TFLitePredictor(tmp_path / "v2.tflite")(images),
                               keras.ops.convert_to_numpy(model(images)), atol=1e-5)
    # The upsampling converts to static ops that XNNPACK runs: the graph is one XNNPACK part
    # (SHAPE, TILE, GATHER or EXPAND_DIMS would each split it).
    from ai_edge_litert.interpreter import Interpreter

    from tests.internals import node_names
    from ghostnet_tf.export import tflite_op_counts
    assert not {"SHAPE", "TILE", "GATHER", "EXPAND_DIMS"} & set(tflite_op_counts(content))
    interpreter = Interpreter(model_content=content, num_threads=1)
    interpreter.allocate_tensors()
    assert node_names(interpreter).count("DELEGATE") == 1
