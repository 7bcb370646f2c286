import keras
import numpy as np
import pytest

from ghostnet_tf import GhostModule, ghostify
from ghostnet_tf.compat import sublayers
from ghostnet_tf.models import cifar

RNG = np.random.default_rng(2)


def small_functional_model():
    """The kind of model a user brings: conv-BN-ReLU blocks, a residual add, a classifier."""
    inputs = keras.Input((16, 16, 3))
    x = keras.layers.Conv2D(8, 3, padding="same", use_bias=False, name="first")(inputs)
    x = keras.layers.BatchNormalization(name="bn_first")(x)
    x = keras.layers.ReLU()(x)
    y = keras.layers.Conv2D(8, 3, padding="same", use_bias=False, name="middle")(x)
    y = keras.layers.BatchNormalization(name="bn_middle")(y)
    x = keras.layers.Add()([x, y])
    x = keras.layers.Conv2D(12, 5, strides=2, padding="valid", activation="relu",
                            name="down")(x)
    x = keras.layers.GlobalAveragePooling2D()(x)
    outputs = keras.layers.Dense(4, name="head")(x)
    return keras.Model(inputs, outputs, name="user_model")


def numpy_weights(layer):
    return [keras.ops.convert_to_numpy(w) for w in layer.weights]


def test_ghostify_replaces_all_but_the_first_convolution():
    model = small_functional_model()
    ghost = ghostify(model)
    assert ghost.name == "ghost_user_model"
    assert type(ghost.get_layer("first")) is keras.layers.Conv2D
    middle, down = ghost.get_layer("middle"), ghost.get_layer("down")
    assert isinstance(middle, GhostModule) and isinstance(down, GhostModule)
    # The primary convolution keeps the replaced kernel size, strides, padding and bias.
    assert (down.kernel_size, down.strides, down.padding, down.use_bias) == (5, 2, "valid", True)
    assert down.primary_conv.kernel.shape == (5, 5, 8, 6)
    assert (middle.ratio, middle.dw_size) == (2, 3)
    x = RNG.standard_normal((2, 16, 16, 3)).astype("float32")
    assert ghost(x).shape == model(x).shape == (2, 4)


def test_ghostify_does_not_double_batch_norm_or_activation():
    model = small_functional_model()
    ghost = ghostify(model)

    def count(m, kind):
        return sum(isinstance(layer, kind) for layer in sublayers(m, recursive=True))
    assert count(ghost, keras.layers.BatchNormalization) == count(
        model, keras.layers.BatchNormalization)
    middle, down = ghost.get_layer("middle"), ghost.get_layer("down")
    assert not middle.use_batch_norm and middle.activation is False
    assert down.activation == "relu"  # the replaced layer's own activation, kept once
    out = keras.ops.convert_to_numpy(down(RNG.standard_normal((1, 9, 9, 8)).astype("float32")))
    assert out.min() >= 0


def test_ghostify_keeps_the_weights_of_the_other_layers():
    model = small_functional_model()
    for layer in model.layers:
        if isinstance(layer, keras.layers.BatchNormalization):
            layer.moving_variance.assign(RNG.uniform(0.5, 2, layer.moving_variance.shape))
    ghost = ghostify(model)
    for name in ("first", "bn_first", "bn_middle", "head"):
        for ours, theirs in zip(numpy_weights(ghost.get_layer(name)),
                                numpy_weights(model.get_layer(name))):
            np.testing.assert_array_equal(ours, theirs)
    # Copies, not shared variables: training the ghost model leaves the original alone.
    assert ghost.get_layer("head") is not model.get_layer("head")


def test_ghostify_keep_first_false_and_sequential_and_nested_models():
    sequential = keras.Sequential([
        keras.Input((8, 8, 3)),
        keras.layers.Conv2D(4, 3, padding="same", name="c1"),
        keras.layers.Conv2D(6, 3, padding="same", name="c2"),
        keras.layers.Flatten(), keras.layers.Dense(2, name="d")], name="seq")
    ghost = ghostify(sequential, ratio=3, dw_size=5, keep_first=False)
    assert isinstance(ghost, keras.Sequential)
    assert isinstance(ghost.get_layer("c1"), GhostModule)
    assert ghost.get_layer("c2").ratio == 3 and ghost.get_layer("c2").dw_size == 5
    inputs = keras.Input((8, 8, 3))
    outer = keras.Model(inputs, keras.layers.Dense(3)(sequential(inputs)), name="outer")
    nested = ghostify(outer)
    inner = nested.layers[1]
    assert type(inner.get_layer("c1")) is keras.layers.Conv2D
    assert isinstance(inner.get_layer("c2"), GhostModule)


def test_ghost_cifar_models_come_from_ghostify():
    ghost = cifar.ghost_resnet20()
    convs = [l for l in ghost.layers if isinstance(l, (keras.layers.Conv2D, GhostModule))]
    assert type(convs[0]) is keras.layers.Conv2D
    assert all(isinstance(layer, GhostModule) for layer in convs[1:]) and len(convs) == 19


def test_ghostify_rejects_bad_input():
    class Subclassed(keras.Model):
        def call(self, x):
            return x
    with pytest.raises(ValueError, match="functional or Sequential"):
        ghostify(Subclassed())
    with pytest.raises(ValueError, match="ratio"):
        ghostify(small_functional_model(), ratio=0)
    with pytest.raises(ValueError, match="dw_size"):
        ghostify(small_functional_model(), dw_size=2)
    dense_only = keras.Sequential([keras.Input((4,)), keras.layers.Dense(2)])
    with pytest.raises(ValueError, match="no Conv2D"):
        ghostify(dense_only)


def test_ghostify_version_2_adds_dfc_attention_to_every_module(tmp_path):
    model = cifar.resnet20()
    v1, v2 = ghostify(model), ghostify(model, version=2)
    assert v2.name == f"ghostv2_{model.name}"
    modules = [layer for layer in v2.layers if isinstance(layer, GhostModule)]
    assert modules and all(module.dfc_attention for module in modules)
    # The DFC branch of each module: a convolution like the primary one (no bias), 1x5 and
    # 5x1 depthwise kernels, and three batch norms (gamma and beta trainable).
    extra = sum(module.kernel_size ** 2 * module.primary_conv.kernel.shape[2] * module.filters
                + (5 + 5 + 3 * 2) * module.filters for module in modules)
    trainable = lambda m: sum(int(np.prod(w.shape)) for w in m.trainable_weights)  # noqa: E731
    assert trainable(v2) == trainable(v1) + extra
    images = RNG.uniform(0, 255, (2, 32, 32, 3)).astype("float32")
    v2.save(tmp_path / "v2.keras")
    restored = keras.saving.load_model(tmp_path / "v2.keras")
    np.testing.assert_allclose(keras.ops.convert_to_numpy(restored(images)),
                               keras.ops.convert_to_numpy(v2(images)), atol=1e-6)
    with pytest.raises(ValueError, match="`version` must be 1"):
        ghostify(model, version=4)


def test_ghostify_version_3_trains_branches_that_fold_into_ghost_modules(tmp_path):
    from ghostnet_tf.models import reparameterize
    from tests.numerics import randomize_batch_norms, relative_difference

    model = cifar.resnet20()
    v1, v3 = ghostify(model), ghostify(model, version=3)
    assert v3.name == f"ghostv3_{model.name}"
    modules = [layer for layer in v3.layers if isinstance(layer, GhostModule)]
    assert modules and all(module.reparam_branches == 3 for module in modules)
    strided = [module for module in modules if module.strides == 2]
    assert strided and strided[0].primary_conv.scale_conv is not None
    randomize_batch_norms(v3)
    v3.save(tmp_path / "v3.keras")
    v3 = keras.saving.load_model(tmp_path / "v3.keras")
    deployed = reparameterize(v3)
    images = RNG.uniform(0, 255, (2, 32, 32, 3)).astype("float32")
    assert relative_difference(deployed(images, training=False),
                               v3(images, training=False)) <= 1e-5
    # The deploy form is the plain Ghost model with a bias on each primary convolution
    # (resnet20's have none); the cheap convolutions' moved into the ResNet's batch norms.
    trainable = lambda m: sum(int(np.prod(w.shape)) for w in m.trainable_weights)
    assert trainable(deployed) == trainable(v1) + sum(
        module.primary_filters for module in modules)
