"""Copying weights between models by layer name, for fine-tuning."""


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
