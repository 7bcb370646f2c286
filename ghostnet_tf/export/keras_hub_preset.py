"""The keras-hub target: a preset folder that `keras_hub.models.ImageClassifier.from_preset`
loads where this library is not installed.

The classifier is keras-hub's own `ImageClassifier`: its backbone is the portable graph
(`ghostnet_tf.portable`) from the image to the last feature map, its head (pooling, dropout,
the `predictions` dense layer) holds the model's classifier, and its preprocessor's
`ImageConverter` does what the model's evaluation transform and input normalization do:
resize (after a center crop to the input's aspect ratio) with the transform's interpolation,
then scale and offset by the normalization. keras-hub's converter has no crop fraction, so
an ImageNet model's `crop_pct` (resize to 256, crop 224) is not reproduced: it sees the
whole center square.

`metadata.json` lists the `ImageClassifier` task (keras-hub leaves the list empty for a
functional backbone; the Hugging Face hub reads it), and `README.md` is the model card.
Needs `pip install keras-hub` (the `hub` extra).
"""
import datetime
import os

import numpy as np

from ghostnet_tf.checks import ArgumentError
from ghostnet_tf.export.common import Opened
from ghostnet_tf.export_rewrites import leading_rescaling, per_channel

SUFFIX = None  # a folder
MARKER = "metadata.json"  # the file that tells a preset folder from other folders
TASK = "ImageClassifier"

# Layers between the last feature map and the classifier that do nothing at inference or
# only flatten.
_PASS_THROUGH = ("Dropout", "Flatten", "Reshape", "Squeeze")


def steps(formats):
    """How many steps writing `formats` takes: one."""
    return len(formats)


def write(model, folder, formats, conversion, step):
    """Write the preset folder of `model` (the inference copy) into `folder`: {name: entry}."""
    (preset,) = formats
    step(f"writing {preset.file}/")
    path = os.path.join(folder, preset.file)
    classifier = save_preset(model, path, conversion.eval_transform)
    return {preset.name: {"backbone_layers": len(classifier.backbone.layers),
                          "image_converter": classifier.preprocessor.image_converter
                          .get_config()}}


def load(path, runtime=None):
    """The preset folder at `path`, opened in keras-hub: float32 [0, 255] images through its
    own preprocessing."""
    classifier = _load_classifier(path)
    converter = classifier.preprocessor.image_converter

    def predict(images):
        outputs = classifier.predict(np.asarray(images, np.float32), verbose=0)
        return np.asarray(outputs)

    shape = (*converter.image_size, classifier.backbone.input_shape[-1])
    return Opened(predict, shape, "float32", classifier.num_classes, "keras_hub")


def _load_classifier(path):
    keras_hub = _keras_hub()
    path = os.fspath(path)
    if not os.path.isfile(os.path.join(path, MARKER)):
        raise ArgumentError("model", f"{path} is not a keras-hub preset folder (no {MARKER}).")
    return keras_hub.models.ImageClassifier.from_preset(path)


def _keras_hub():
    try:
        import keras_hub
    except ImportError:
        raise ArgumentError("formats", 'keras_hub needs keras-hub: pip install -e ".[hub]".') \
            from None
    return keras_hub


def image_classifier(model, eval_transform=None):
    """keras-hub's `ImageClassifier` computing what `model` (a classifier of this library,
    functional, ending in a dense classifier) computes, with the preprocessor of its
    evaluation transform (`eval_transform`, default: its registry entry's)."""
    import keras

    from ghostnet_tf.models import registry
    from ghostnet_tf.models.transfer import clone_with_weights
    from ghostnet_tf.portable import portable

    keras_hub = _keras_hub()
    graph = portable(model)
    head = _head(graph)
    normalization = leading_rescaling(graph)

    def skip_normalization(layer, *args, **kwargs):
        return args[0] if layer is normalization else layer(*args, **kwargs)

    features = keras.Model(graph.input, head["features"], name=f"{model.name}_backbone")
    backbone = clone_with_weights(features, lambda layer: layer,
                                  call_function=skip_normalization)
    height, width = graph.input_shape[1:3]
    transform = eval_transform or registry.eval_transform_for(model.name, height)
    scale = offset = None
    if normalization is not None:
        channels = graph.input_shape[-1]
        scale, offset = ([float(v) for v in per_channel(value, channels)]
                         for value in (normalization.scale, normalization.offset))
    converter = keras_hub.layers.ImageConverter(
        image_size=(height, width), scale=scale, offset=offset, crop_to_aspect_ratio=True,
        interpolation=transform.interpolation, antialias=True)
    classifier = keras_hub.models.ImageClassifier(
        backbone=backbone, num_classes=head["dense"].units,
        preprocessor=keras_hub.models.ImageClassifierPreprocessor(image_converter=converter),
        pooling="avg", activation=head["activation"], dropout=head["dropout"],
        name=model.name)
    classifier.output_dense.set_weights(head["dense"].get_weights())
    return classifier


def save_preset(model, folder, eval_transform=None, card=None):
    """Write the keras-hub preset of `model` (`image_classifier`) to `folder`, whole or not at
    all (an earlier preset there is replaced), with `metadata.json` naming its task and the
    model card `README.md` (`card`: a `ModelCard`; default: the facts the model itself
    gives). Returns the classifier."""
    from ghostnet_tf.atomic import read_json, replace_directory, write_file, write_json

    classifier = image_classifier(model, eval_transform)

    def build(staging):
        classifier.save_to_preset(staging)
        metadata_path = os.path.join(staging, MARKER)
        write_json(metadata_path, {**read_json(metadata_path), "tasks": [TASK]})
        write_file(os.path.join(staging, "README.md"),
                   (card or ModelCard()).text(model, classifier))
    replace_directory(build, folder)
    return classifier


def _head(graph):
    """{"features": the last feature map (4D), "dense": the classifier, "activation":
    "softmax" or None, "dropout": its rate} of a portable classifier graph, or ArgumentError
    when it does not end as ImageClassifier's head does (pooling, dropout, dense)."""
    from keras import activations, layers

    def producer(tensor):
        return tensor._keras_history.operation

    def input_of(tensor):
        # The input of the call that made `tensor`: an operation shared with another graph
        # (a keras.ops one) has calls there too.
        history = tensor._keras_history
        return history.operation._inbound_nodes[history.node_index].input_tensors[0]

    def refuse(why):
        raise ArgumentError("model", f"{graph.name} cannot be a keras-hub ImageClassifier: "
                                     f"{why}.")

    last = producer(graph.output)
    activation = None
    if isinstance(last, layers.Activation) and last.activation is activations.softmax:
        activation, last = "softmax", producer(input_of(last.output))
    if not isinstance(last, layers.Dense):
        refuse(f"its output comes from {type(last).__name__} {last.name}, not a dense "
               "classifier")
    if last.activation is activations.softmax:
        activation = "softmax"
    elif last.activation is not activations.linear:
        refuse(f"its classifier {last.name} has the activation {last.activation.__name__}")
    tensor, dropout = input_of(last.output), 0.0
    while type(producer(tensor)).__name__ in _PASS_THROUGH:
        dropout = getattr(producer(tensor), "rate", dropout)
        tensor = input_of(tensor)
    pooled = producer(tensor)
    if isinstance(pooled, layers.GlobalAveragePooling2D) and len(tensor.shape) == 2:
        tensor = input_of(tensor)  # ImageClassifier's own average pooling does it
    if len(tensor.shape) != 4:
        refuse(f"the classifier reads a {len(tensor.shape)}D tensor, not a feature map")
    if tensor.shape[1:3] != (1, 1) and not isinstance(pooled, layers.GlobalAveragePooling2D):
        # A map that is not 1x1 would be pooled by the head, which the model does not do.
        refuse(f"its classifier reads a {tensor.shape[1]}x{tensor.shape[2]} map unpooled")
    return {"features": tensor, "dense": last, "activation": activation, "dropout": dropout}


class ModelCard:
    """The facts a preset's README.md gives beyond what the model holds: its published weights
    (`tag` and their `PublishedWeights`), their measured LiteRT latency (`latency`: {"float32":
    ms, "int8": ms}, batch 1, one thread; `latency_source`: where and when it was measured) and
    the command that made the preset."""

    def __init__(self, tag=None, published=None, latency=None, latency_source=None,
                 command=None):
        self.tag, self.published = tag, published
        self.latency, self.latency_source = latency, latency_source
        self.command = command

    def text(self, model, classifier):
        from ghostnet_tf import __version__
        from ghostnet_tf.models import registry

        entry = registry.find_entry(model.name)
        converter = classifier.preprocessor.image_converter
        # The hub reads the licence from the front matter; a model trained here has the
        # licence its owner gives it, which the card cannot know.
        front = ["library_name: keras-hub"] + (
            [f"license: {self.published.license}"] if self.published else []) + [
            "pipeline_tag: image-classification", "tags:", "- image-classification",
            "- keras", "- ghostnet"]
        lines = ["---", *front, "---", f"# {model.name}", ""]
        if entry is not None and entry.description:
            lines += [f"{entry.description}.", ""]
        height, width = converter.image_size
        lines += [f"- Parameters: {classifier.count_params():,}",
                  f"- Input: {height}x{width} RGB pixels in [0, 255]; the preprocessor "
                  f"resizes ({converter.interpolation}, after a center crop to the aspect "
                  f"ratio) and normalizes"]
        if entry is not None and entry.input_shape[:2] == (height, width):
            lines.append(f"- MACs: {entry.macs / 1e6:.1f}M at {height}x{width} (the "
                         f"registry's count)")
        if self.published is not None:
            source = self.published.sources[0]
            lines += [f"- Weights: `{self.tag}`, from {source.url}",
                      f"- Licence: {self.published.license}",
                      f"- Published ImageNet top-1: {self.published.top1}% "
                      f"({self.published.measured_by})"]
        if self.latency:
            lines.append("- LiteRT latency, batch 1, one thread (median): "
                         + ", ".join(f"{kind} {ms:.2f} ms" for kind, ms in self.latency.items())
                         + f" ({self.latency_source})")
        lines += ["", "## Use", "", "```python", "import keras_hub", "",
                  'classifier = keras_hub.models.ImageClassifier.from_preset("PRESET")',
                  "scores = classifier.predict(images)  # RGB images of any size, in [0, 255]",
                  "```", "", "## How it was made", "",
                  f"Written by ghostnet_tf {__version__} on "
                  f"{datetime.date.today().isoformat()}"
                  + (f" with `{self.command}`" if self.command else "") + ": the model "
                  "rewritten as Keras' built-in layers (the same weights and outputs), as "
                  "the backbone of keras-hub's ImageClassifier. It needs keras-hub only."]
        return "\n".join(lines) + "\n"
