import keras
import numpy as np
import tensorflow as tf

from ghostnet_tf import visualize
from ghostnet_tf.cli import fmaps as fmaps_cli
from ghostnet_tf.models import get_model


def test_mosaic_scales_each_map_and_tiles_in_order():
    maps = np.stack([np.full((2, 3), 5.0), np.arange(6.0).reshape(2, 3)], axis=-1)
    grid = visualize.mosaic(maps, columns=2, count=2, pad=1)
    assert grid.shape == (2, 7)
    # A constant map becomes zeros, the other spans 0..1, the padding column is blank (NaN).
    np.testing.assert_allclose(grid[:, :3], 0.0)
    assert np.isnan(grid[:, 3]).all()
    np.testing.assert_allclose(grid[:, 4:], np.arange(6.0).reshape(2, 3) / 5)


def test_feature_maps_are_the_parts_of_the_module_output():
    keras.utils.set_random_seed(0)
    model = get_model("ghost_resnet20", input_shape=(32, 32, 3))
    image = np.random.default_rng(0).uniform(0, 255, (32, 32, 3)).astype("float32")
    intrinsic, ghost, name = visualize.ghost_feature_maps(model, image)
    layer = model.get_layer(name)
    output = keras.Model(model.input, layer.output)(image[None])[0]
    np.testing.assert_allclose(np.concatenate([intrinsic, ghost], -1)[..., :layer.filters],
                               output, atol=1e-5)
    # Each ghost map is a depthwise filter of its own intrinsic map.
    kernel = keras.ops.convert_to_numpy(layer.cheap_conv.kernel)[:, :, 0, 0]
    expected = tf.nn.conv2d(intrinsic[None, :, :, :1], kernel[:, :, None, None], 1, "SAME")
    np.testing.assert_allclose(ghost[..., 0], expected[0, :, :, 0], atol=1e-4)


def test_cli_writes_png_and_tensorboard_beside_the_plain_model(tmp_path, capsys):
    ghost, plain = get_model("ghost_resnet20"), get_model("resnet20")
    ghost.save(tmp_path / "ghost.keras")
    plain.save(tmp_path / "plain.keras")
    image = tmp_path / "image.png"
    image.write_bytes(tf.io.encode_png(np.full((40, 48, 3), 90, np.uint8)).numpy())
    name = visualize.find_ghost_module(ghost)[1].name
    assert fmaps_cli.main(["--model", str(tmp_path / "ghost.keras"), "--image", str(image),
                           "--plain-model", str(tmp_path / "plain.keras"),
                           "-o", str(tmp_path / "maps.png"),
                           "--tensorboard", str(tmp_path / "tb")]) == 0
    assert (tmp_path / "maps.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    events = list((tmp_path / "tb").glob("events.out.tfevents.*"))
    tags = {value.tag for event in tf.compat.v1.train.summary_iterator(str(events[0]))
            for value in event.summary.value}
    assert tags == {"intrinsic maps", "ghost maps", "plain model, same layer"}
    assert name in capsys.readouterr().out
    assert fmaps_cli.main(["--model", str(tmp_path / "ghost.keras"), "--image", str(image),
                           "--layer", "nope"]) == 2
    assert "--layer nope: no Ghost module" in capsys.readouterr().err
    assert fmaps_cli.main(["--model", str(tmp_path / "plain.keras"), "--image", str(image)]) == 2
    assert "has no Ghost module" in capsys.readouterr().err
