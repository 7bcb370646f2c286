import json

import keras
import pytest

from ghostnet_tf import GhostNet, profile_model
from ghostnet_tf.cli import profile as profile_cli


def test_macs_and_params_of_a_model_counted_by_hand():
    inputs = keras.Input((8, 8, 3))
    x = keras.layers.Conv2D(4, 3, strides=2, padding="same", name="conv")(inputs)
    x = keras.layers.BatchNormalization(name="bn")(x)
    x = keras.layers.DepthwiseConv2D(3, padding="same", depth_multiplier=2, name="dw")(x)
    x = keras.layers.Conv2D(4, 1, groups=2, name="grouped")(x)
    x = keras.layers.GlobalAveragePooling2D(name="pool")(x)
    outputs = keras.layers.Dense(5, name="fc")(x)
    profile = profile_model(keras.Model(inputs, outputs))
    rows = {row.name: row for row in profile.layers}
    assert rows["conv"].macs == 4 * 4 * 4 * (3 * 3 * 3)   # output pixels x channels x kernel
    assert rows["dw"].macs == 4 * 4 * 8 * (3 * 3)
    assert rows["grouped"].macs == 4 * 4 * 4 * (8 // 2)
    assert rows["fc"].macs == 4 * 5
    assert rows["bn"].macs == 0 and rows["bn"].params == 8
    assert rows["conv"].output_shape == (1, 4, 4, 4)
    assert profile.macs == sum(row.macs for row in profile.layers)
    assert profile.params == (4 * 27 + 4) + 8 + (8 * 9 + 8) + (4 * 4 + 4) + (4 * 5 + 5)
    assert profile.non_trainable_params == 8


# The GhostNet paper's FLOPs (multiply-adds), which it rounds to the million.
@pytest.mark.parametrize("width, paper_macs", [(0.5, 42e6), (1.0, 141e6), (1.3, 226e6)])
def test_ghostnet_macs_within_one_percent_of_the_paper(width, paper_macs):
    profile = profile_model(GhostNet(width=width))
    assert profile.macs == pytest.approx(paper_macs, rel=0.01)


def test_profile_descends_into_ghost_modules_and_takes_an_input_size():
    profile = profile_model(GhostNet(width=0.5, include_top=False), input_size=64)
    names = [row.name for row in profile.layers]
    assert "blocks_3_0/se/conv_reduce" in names
    assert "blocks_3_0/ghost1/cheap_conv" in names
    rows = {row.name: row for row in profile.layers}
    assert rows["blocks_9_conv"].output_shape == (1, 2, 2, 480)
    with pytest.raises(ValueError, match="input_size"):
        profile_model(GhostNet(width=0.5, include_top=False))


def test_profile_cli_table_json_and_errors(capsys):
    assert profile_cli.main(["resnet20", "--format", "json"]) == 0
    result = json.loads(capsys.readouterr().out)
    assert result["model"] == "resnet20" and "FLOPs = 2 x MACs" in result["macs_convention"]
    assert result["macs"] == sum(layer["macs"] for layer in result["layers"])
    assert profile_cli.main(["ghost_resnet20", "--input-size", "28"]) == 0
    table = capsys.readouterr().out
    assert "stage1_block1_1_conv/cheap_conv" in table and "FLOPs = 2 x MACs" in table
    assert profile_cli.main(["no_such_model"]) == 2
    assert "no_such_model" in capsys.readouterr().err
    assert profile_cli.main(["missing.keras"]) == 2
    assert "MODEL missing.keras: no such file" in capsys.readouterr().err


def test_profile_cli_loads_a_keras_file(tmp_path, capsys):
    path = tmp_path / "model.keras"
    GhostNet(width=0.5, input_shape=(32, 32, 3), classes=10).save(path)
    assert profile_cli.main([str(path), "--format", "json"]) == 0
    assert json.loads(capsys.readouterr().out)["params"] == profile_model(
        keras.saving.load_model(path)).params
