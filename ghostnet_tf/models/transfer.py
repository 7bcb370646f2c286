"""Copying models: the one clone-and-copy pass behind `ghostify`, `reparameterize`, the
export's inference copy and its graph rewrites, and freezing for fine-tuning. Loading weights
(and copying them by layer name) is `ghostnet_tf.weights`'."""
import keras


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


def freeze_all_but_classifier(model):
    """Make every layer but the last one with weights (the classifier) non-trainable; frozen
    batch norms then also keep their statistics. Returns the classifier layer."""
    classifier = [layer for layer in model.layers if layer.weights][-1]
    for layer in model.layers:
        layer.trainable = layer is classifier
    return classifier
