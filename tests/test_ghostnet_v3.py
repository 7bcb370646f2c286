"""GhostNetV3: exact sizes in both forms, the fold (`reparameterize`), the official keys, and
converted weights against an independent PyTorch re-implementation (reference/torch_ghostnet.py)."""
import keras
import numpy as np
import pytest
import torch

from ghostnet_tf.cli import convert_weights as convert_cli
from ghostnet_tf.checks import ArgumentError
from ghostnet_tf.compat import sublayers
from ghostnet_tf.layers import RepConv
from ghostnet_tf.models import GhostNetV3, get_model, registry, reparameterize
from ghostnet_tf.models.reparameterize import deploy_form, has_train_form_layers
from ghostnet_tf.profile import profile_model
from ghostnet_tf.weights import official_keys
from tests.numerics import randomize_batch_norms, relative_difference
from reference.torch_ghostnet import calibrated_ghostnet


# Official release (= timm), 1000 classes: train-form params and MACs, deploy-form params;
# the deploy form has GhostNetV2's MACs.
@pytest.mark.parametrize("width, train_params, deploy_params, deploy_macs", [
    (0.5, 3_395_384, 2_853_176, 49.641e6), (1.0, 8_129_028, 6_147_588, 167.048e6),
    (1.3, 12_217_720, 8_948_296, 269.323e6), (1.6, 17_275_700, 12_377_778, 398.607e6)])
def test_both_forms_have_the_official_sizes_and_fold_exactly(width, train_params,
                                                             deploy_params, deploy_macs):
    model = GhostNetV3(width=width, classifier_activation=None)
    randomize_batch_norms(model)
    profile = profile_model(model)
    entry = registry.model_entry(model.name)
    assert profile.params == train_params
    assert (entry.params, entry.macs) == (profile.params, profile.macs)
    keys = official_keys(model)  # 1,956 official keys, with one num_batches_tracked per BN
    assert len(keys) + sum(key.endswith(".running_mean") for key in keys) == 1956
    assert "blocks.1.0.dw_rpr_scale.conv.weight" in keys
    assert "blocks.8.3.ghost1.cheap_rpr_skip.running_var" in keys

    deployed = reparameterize(model)
    profile = profile_model(deployed)
    assert profile.params == deploy_params
    assert profile.macs == pytest.approx(deploy_macs, rel=0.005)
    assert (entry.deploy_params, entry.deploy_macs) == (profile.params, profile.macs)
    assert not any(isinstance(layer, keras.layers.BatchNormalization)
                   for layer in sublayers(deployed.get_layer("blocks_3_0"), recursive=True)
                   if "dfc" not in layer.name and "shortcut" not in layer.name)
    images = np.random.default_rng(1).uniform(0, 255, (2, 224, 224, 3)).astype("float32")
    logits = model(images, training=False)
    assert relative_difference(deployed(images, training=False), logits) <= 1e-5
    # The trained model is untouched and still in train form.
    assert isinstance(model.get_layer("blocks_1_0").conv_dw, RepConv)
    assert model.get_layer("blocks_1_0").conv_dw.deploy is False


def test_converted_weights_give_pytorchs_logits_in_both_forms(tmp_path):
    reference = calibrated_ghostnet(1.0)
    source = tmp_path / "ghostnetv3.pth"
    torch.save({"state_dict": reference.state_dict()}, source)
    output = tmp_path / "v3.weights.h5"
    assert convert_cli.main([str(source), "--arch", "ghostnetv3_100", "-o", str(output)]) == 0
    # 240x208: 15x13 maps in stage 6 and 8x7 in the last, odd pools and upsamplings
    # elsewhere than at 224.
    for height, width in ((224, 224), (240, 208)):
        images = np.random.default_rng(1).normal(size=(2, 3, height, width)).astype("float32")
        with torch.no_grad():
            expected = reference(torch.from_numpy(images)).numpy()
        assert np.abs(expected).max() > 2.0  # logits that say something
        for deploy in (False, True):
            model = GhostNetV3(weights=output, deploy=deploy, include_preprocessing=False,
                               classifier_activation=None, input_shape=(height, width, 3))
            actual = model(images.transpose(0, 2, 3, 1), training=False)
            np.testing.assert_allclose(keras.ops.convert_to_numpy(actual), expected,
                                       atol=1e-4, rtol=0)


def test_timm_names_convert_and_a_deploy_form_is_refused(tmp_path, capsys):
    from safetensors.torch import save_file

    reference = calibrated_ghostnet(0.5, classes=10, size=64)
    state = reference.state_dict()
    # timm names the batch norm of every branch bn1.
    timm_state = {key.replace(".bn.", ".bn1.") if "_rpr_" in key else key: value
                  for key, value in state.items() if not key.endswith("num_batches_tracked")}
    assert any(".bn1." in key for key in timm_state)
    save_file(timm_state, tmp_path / "timm.safetensors")
    output = tmp_path / "timm.weights.h5"
    assert convert_cli.main([str(tmp_path / "timm.safetensors"), "--arch", "ghostnetv3_050",
                             "-o", str(output)]) == 0
    images = np.random.default_rng(2).normal(size=(2, 3, 64, 64)).astype("float32")
    with torch.no_grad():
        expected = reference(torch.from_numpy(images)).numpy()
    model = GhostNetV3(width=0.5, classes=10, weights=output, include_preprocessing=False,
                       classifier_activation=None, input_shape=(64, 64, 3))
    # Logits of about 20 from statistics of 2x2 maps: within 1e-4 of their size (the
    # precision is the test above's; a wrong name gives differences of the logits' size).
    np.testing.assert_allclose(keras.ops.convert_to_numpy(
        model(images.transpose(0, 2, 3, 1), training=False)), expected,
        atol=1e-4 * np.abs(expected).max(), rtol=0)

    # A deploy-form PyTorch checkpoint (folded keys) is named as such.
    deployed = reparameterize(model)
    folded = {key: torch.from_numpy(np.asarray(variable).copy())
              for key, variable in official_keys(deployed).items()}
    assert "blocks.0.0.ghost1.primary_conv.0.bias" in folded
    torch.save(folded, tmp_path / "deploy.pth")
    assert convert_cli.main([str(tmp_path / "deploy.pth"), "--arch", "ghostnetv3_050",
                             "-o", str(tmp_path / "x.weights.h5")]) == 2
    assert "deploy (folded) form" in capsys.readouterr().err
    # A deploy-form Keras weights file given to the train form names the way out.
    deployed.save_weights(tmp_path / "deploy.weights.h5")
    with pytest.raises(ArgumentError, match="deploy=True") as error:
        GhostNetV3(width=0.5, classes=10, weights=tmp_path / "deploy.weights.h5",
                   input_shape=(64, 64, 3))
    assert error.value.argument == "weights"


def test_reparameterize_refuses_a_model_with_nothing_to_fold():
    model = get_model("resnet20")
    with pytest.raises(ArgumentError, match="nothing to fold") as error:
        reparameterize(model)
    assert error.value.argument == "model"
    # deploy_form, for code that takes any model, passes it through.
    assert deploy_form(model) is model
    v3 = get_model("ghost_resnet20", version=3)
    assert has_train_form_layers(v3) and not has_train_form_layers(deploy_form(v3))


def test_reparameterize_moves_cheap_biases_into_the_following_batch_norms():
    from ghostnet_tf.layers import GhostModule

    model = get_model("ghost_resnet20", version=3)
    randomize_batch_norms(model, seed=3)
    deployed = reparameterize(model)
    modules = [layer for layer in deployed.layers if isinstance(layer, GhostModule)]
    # Every module of the ghostified ResNet feeds a batch norm: no cheap bias is left, and
    # the deployed model has the plain Ghost model's parameters plus the primary biases.
    assert modules and not any(module.cheap_bias for module in modules)
    assert not any(module.cheap_conv.conv.use_bias for module in modules)
    primary_biases = sum(module.primary_filters for module in modules)
    assert deployed.count_params() == get_model("ghost_resnet20").count_params() + \
        primary_biases
    images = np.random.default_rng(1).uniform(0, 255, (2, 32, 32, 3)).astype("float32")
    # The logits (pre-softmax): the same function within float rounding.
    logits = [keras.Model(m.input, m.get_layer("fc").output) for m in (model, deployed)]
    assert relative_difference(logits[1](images, training=False),
                               logits[0](images, training=False)) <= 1e-5
    # A module whose output is read by something else than a batch norm keeps its bias.
    inputs = keras.Input((8, 8, 4))
    module = GhostModule(6, reparam_branches=2, activation=False, name="ghost")
    outputs = keras.layers.ReLU()(module(inputs))
    kept = reparameterize(keras.Model(inputs, outputs)).get_layer("ghost")
    assert kept.cheap_bias and kept.cheap_conv.conv.use_bias
    with pytest.raises(ArgumentError, match="`cheap_bias` False is for the folded form"):
        GhostModule(6, cheap_bias=False)


def test_rep_conv_has_a_scale_branch_where_the_kernel_is_larger_than_one():
    assert RepConv(4, 3).scale_branch and not RepConv(4, 1).scale_branch
    assert not RepConv(4, 3, scale_branch=False).scale_branch
    with pytest.raises(ArgumentError, match="`scale_branch` needs kernel_size > 1"):
        RepConv(4, 1, scale_branch=True)


@pytest.mark.parametrize("strides, padding, depthwise", [
    (1, "same", False), (2, "same", False), (2, "same", True), (1, "valid", True),
    (2, "valid", False)])
def test_rep_conv_folds_every_branch_kind_exactly(strides, padding, depthwise):
    # Odd input sizes at stride 2: the 1x1 branch must sample the 3x3 windows' centres,
    # where the fold puts it.
    identity = strides == 1 and padding == "same"
    layer = RepConv(6, 3, strides=strides, padding=padding, depthwise=depthwise,
                    branches=2, identity_branch=identity)
    inputs = keras.Input((9, 7, 6))
    model = keras.Model(inputs, layer(inputs))
    randomize_batch_norms(model, seed=strides)
    images = np.random.default_rng(0).normal(size=(2, 9, 7, 6)).astype("float32")
    deployed = reparameterize(model)
    assert [type(inner).__name__ for inner in sublayers(deployed.layers[1])] == [
        "DepthwiseConv2D" if depthwise else "Conv2D"]
    expected = model(images, training=False)
    assert relative_difference(deployed(images, training=False), expected) <= 1e-6


def test_export_folds_the_branches_into_v2s_graph(tmp_path):
    from ghostnet_tf.export import TFLitePredictor, tflite_files, tflite_op_counts
    from ghostnet_tf.models import GhostNetV2

    # 128x128: the 64x64 maps of the first blocks take the duplicate-form rewrite too.
    model = GhostNetV3(width=0.5, input_shape=(128, 128, 3), classes=10)
    randomize_batch_norms(model)
    content = tflite_files(model, ["float32"])["float32"]
    (tmp_path / "v3.tflite").write_bytes(content)
    images = np.random.default_rng(0).uniform(0, 255, (2, 128, 128, 3)).astype("float32")
    np.testing.assert_allclose(TFLitePredictor(tmp_path / "v3.tflite")(images),
                               keras.ops.convert_to_numpy(model(images, training=False)),
                               atol=1e-5)
    v2 = GhostNetV2(width=0.5, input_shape=(128, 128, 3), classes=10)
    assert tflite_op_counts(content) == tflite_op_counts(tflite_files(v2, ["float32"])["float32"])
