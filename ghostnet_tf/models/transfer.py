"""Copying models and weights: the one clone-and-copy pass behind `ghostify`,
`reparameterize`, the export's inference copy and its graph rewrites, loading a
`.weights.h5` file with errors that name it, and copying weights by layer name for
fine-tuning."""
import os

import keras

from ghostnet_tf.checks import ArgumentError


def from_config(layer, **overrides):
    """A new, unbuilt layer of `layer`'s class and config, with `overrides` in the config."""
    return layer.__class__.from_config({**layer.get_config(), **overrides})


def copy_weights(source, target):
    """Give `target` (a layer of the same structure) the weights of `source`."""
    if source.weights:
        target.set_weights(source.get_weights())


def clone_with_weights(model, clone_layer=from_config, transfer=copy_weights,
                       call_function=None, recursive=False, input_tensors=None):
    """A copy of the functional or Sequential `model`, under its name, in which each layer
    is `clone_layer(layer)`: a new layer, which then gets its weights from the one it
    replaces through `transfer(layer, new_layer)`, or the layer itself, shared with `model`.
    `call_function`, `recursive` (nested models cloned layer by layer, not whole) and
    `input_tensors` are `keras.models.clone_model`'s; keras.ops operations in the graph are kept as they are."""
    replaced = []

    def clone(layer):
        if not isinstance(layer, keras.layers.Layer):
            return layer  # a keras.ops operation in the graph: no weights, no config
        new = clone_layer(layer)
        if new is not layer:
            replaced.append((layer, new))
        return new

    copy = keras.models.clone_model(model, input_tensors=input_tensors, clone_function=clone,
                                    call_function=call_function, recursive=recursive)
    for layer, new in replaced:
        transfer(layer, new)
    copy.name = model.name
    return copy


def copy_weights_by_name(source, target, skip=()):
    """Set each layer of `target` that has weights to the weights of the `source` layer of the
    same name, where all their shapes agree. Returns the names of the layers copied."""
    sources = {layer.name: layer for layer in source.layers if layer.weights}
    copied = []
    for layer in target.layers:
        match = sources.get(layer.name)
        if not layer.weights or match is None or layer.name in skip:
            continue
        weights = match.get_weights()
        if [w.shape for w in weights] == [tuple(v.shape) for v in layer.weights]:
            layer.set_weights(weights)
            copied.append(layer.name)
    return copied


def freeze_all_but_classifier(model):
    """Make every layer but the last one with weights (the classifier) non-trainable; frozen
    batch norms then also keep their statistics. Returns the classifier layer."""
    classifier = [layer for layer in model.layers if layer.weights][-1]
    for layer in model.layers:
        layer.trainable = layer is classifier
    return classifier


def load_model_weights(model, weights):
    """Load a `.weights.h5` file into `model`, with errors that name the file."""
    weights = os.fspath(weights)
    if not os.path.exists(weights):
        raise ArgumentError("weights", f"file {weights!r} does not exist. Pass None, or the "
                                       "path of a `.weights.h5` file saved from the same "
                                       "architecture.")
    try:
        model.load_weights(weights)
    except (ValueError, KeyError) as error:
        raise ArgumentError(
            "weights", f"file {weights!r} does not fit {model.name} "
                       f"({model.count_params():,} parameters): it was saved from another "
                       f"architecture, width or number of classes. Keras said: {error}") \
            from error
