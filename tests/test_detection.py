"""GhostNet as the image encoder of keras-hub's detection and segmentation models: the
feature pyramid (`feature_pyramid`) in a RetinaNet and a DeepLabV3 that train, save and load."""
import keras
import numpy as np
import pytest

import ghostnet_tf
from ghostnet_tf.layers import FeaturePyramidModel

keras_hub = pytest.importorskip("keras_hub")  # the hub extra, in the test extra


def _images_and_masks(size, count=4):
    """Images with two bright and dark rectangles, and their masks (0: background)."""
    rng = np.random.default_rng(0)
    images = rng.uniform(0, 255, (count, size, size, 3)).astype("float32")
    masks = np.zeros((count, size, size, 1), "int32")
    masks[:, size // 5: size // 2, size // 4: 2 * size // 3] = 1
    masks[:, 3 * size // 4:, : size // 4] = 2
    images[masks[..., 0] == 1], images[masks[..., 0] == 2] = 220.0, 20.0
    return images, masks


def _save_and_load(model, images, path):
    model.save(path)
    loaded = keras.saving.load_model(path)
    return keras.tree.map_structure(keras.ops.convert_to_numpy, model(images)), \
        keras.tree.map_structure(keras.ops.convert_to_numpy, loaded(images))


def test_the_pyramid_gives_keras_hub_its_levels():
    encoder = ghostnet_tf.feature_pyramid(ghostnet_tf.get_model(
        "ghostnet_050", include_top=False, input_shape=(128, 128, 3)))
    assert isinstance(encoder, FeaturePyramidModel)
    assert {level: tuple(tensor.shape[1:]) for level, tensor in
            encoder.pyramid_outputs.items()} == {
        "P2": (32, 32, 12), "P3": (16, 16, 20), "P4": (8, 8, 56), "P5": (4, 4, 480)}
    loaded = FeaturePyramidModel.from_config(encoder.get_config())
    assert list(loaded.pyramid_outputs) == ["P2", "P3", "P4", "P5"]


def test_a_retinanet_with_a_ghostnet_encoder_trains_saves_and_loads(tmp_path):
    encoder = ghostnet_tf.feature_pyramid(ghostnet_tf.get_model(
        "ghostnet_050", include_top=False, input_shape=(128, 128, 3)))
    backbone = keras_hub.models.RetinaNetBackbone(
        image_encoder=encoder, min_level=3, max_level=7, use_p5=False,
        image_shape=(128, 128, 3))
    detector = keras_hub.models.RetinaNetObjectDetector(
        backbone=backbone, num_classes=3, bounding_box_format="yxyx")
    # Eager steps: tracing the training graph would take minutes, and a few steps show it.
    detector.compile(optimizer=keras.optimizers.Adam(1e-4), run_eagerly=True)
    images, _ = _images_and_masks(128)
    boxes = {"boxes": np.array([[[25, 32, 64, 85], [96, 0, 128, 32]]] * 4, "float32"),
             "labels": np.array([[1, 2]] * 4, "int32")}
    losses = detector.fit(images, boxes, epochs=6, batch_size=4, verbose=0).history["loss"]
    assert losses[-1] < 0.5 * losses[0], losses
    outputs, loaded = _save_and_load(detector, images[:2], tmp_path / "retinanet.keras")
    for key in ("bbox_regression", "cls_logits"):
        np.testing.assert_allclose(loaded[key], outputs[key], rtol=1e-5, atol=1e-5)
    # The exports are image classifiers: a detector is refused in one line, up front.
    from ghostnet_tf.checks import ArgumentError
    from ghostnet_tf.export import export

    with pytest.raises(ArgumentError, match=r"gives 2 output\(s\) of shape \(None, 3069, 4\), "
                                            r"\(None, 3069, 3\); the export writes image "
                                            "classifiers"):
        export(detector, tmp_path / "export", ["float32"])
    assert not (tmp_path / "export").exists()


def test_a_deeplabv3_with_a_ghostnetv3_encoder_trains_saves_and_loads(tmp_path):
    encoder = ghostnet_tf.feature_pyramid(ghostnet_tf.get_model(
        "ghostnetv3_050", include_top=False, input_shape=(64, 64, 3)))
    backbone = keras_hub.models.DeepLabV3Backbone(
        image_encoder=encoder, low_level_feature_key="P2", spatial_pyramid_pooling_key="P5",
        upsampling_size=8, dilation_rates=[6, 12, 18])
    segmenter = keras_hub.models.DeepLabV3ImageSegmenter(backbone=backbone, num_classes=3)
    segmenter.compile(optimizer=keras.optimizers.Adam(1e-3),
                      loss=keras.losses.SparseCategoricalCrossentropy(from_logits=True),
                      run_eagerly=True)
    images, masks = _images_and_masks(64)
    losses = segmenter.fit(images, masks, epochs=5, batch_size=4, verbose=0).history["loss"]
    assert losses[-1] < 0.9 * losses[0], losses
    outputs, loaded = _save_and_load(segmenter, images[:2], tmp_path / "deeplab.keras")
    assert outputs.shape == (2, 64, 64, 3)
    np.testing.assert_allclose(loaded, outputs, rtol=1e-5, atol=1e-5)
