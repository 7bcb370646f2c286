"""LiteRT model metadata for image classifiers: what MediaPipe's `ImageClassifier` reads.

A `.tflite` carries its metadata as a flatbuffer (schema `metadata_schema.fbs` of LiteRT and
MediaPipe, file identifier "M001") in a buffer that the model's metadata entry
"TFLITE_METADATA" points to; associated files (the labels) are appended to the file as a zip
archive, which flatbuffer readers ignore. It is written here with `flatbuffers`, which
TensorFlow already depends on, because neither ready-made writer can be installed beside it:
mediapipe 1.2.2's metadata writers import a native module that its wheel lacks
(`mediapipe.tasks.cc.metadata.python._pywrap_metadata_version`), and tflite-support (last
release 0.4.4, 2023) needs protobuf < 4, which TensorFlow 2.21 cannot run with. The tests read
what is written with MediaPipe's own generated schema classes, and load the files in
MediaPipe's `ImageClassifier`.
"""
import io
import zipfile

import flatbuffers
import numpy as np

METADATA_NAME = "TFLITE_METADATA"
FILE_IDENTIFIER = b"M001"
# Every field written here exists since the schema's first version.
MIN_PARSER_VERSION = "1.0.0"

# Enum and union values of metadata_schema.fbs.
_TENSOR_AXIS_LABELS = 2  # AssociatedFileType
_RGB = 1  # ColorSpaceType
_FEATURE_PROPERTIES, _IMAGE_PROPERTIES = 1, 2  # ContentProperties
_NORMALIZATION_OPTIONS = 1  # ProcessUnitOptions


class _Writer:
    """Tables, vectors and strings of one flatbuffer, children before parents."""

    def __init__(self):
        self.builder = flatbuffers.Builder(1024)

    def string(self, text):
        return self.builder.CreateString(text)

    def tables(self, offsets):
        self.builder.StartVector(4, len(offsets), 4)
        for offset in reversed(offsets):
            self.builder.PrependUOffsetTRelative(offset)
        return self.builder.EndVector()

    def floats(self, values):
        self.builder.StartVector(4, len(values), 4)
        for value in reversed(values):
            self.builder.PrependFloat32(float(value))
        return self.builder.EndVector()

    def table(self, fields):
        """A table from {slot: value}: ints are offsets already written, ("byte", v) and
        ("uint", v) scalars. Slots are the fields' positions in the schema's table."""
        builder = self.builder
        builder.StartObject(max(fields, default=-1) + 1)
        for slot, value in fields.items():
            if isinstance(value, tuple):
                kind, number = value
                if kind == "byte":
                    builder.PrependInt8Slot(slot, number, 0)
                else:
                    builder.PrependUint32Slot(slot, number, 0)
            else:
                builder.PrependUOffsetTRelativeSlot(slot, value, 0)
        return builder.EndObject()

    def finish(self, root):
        self.builder.Finish(root, file_identifier=FILE_IDENTIFIER)
        return bytes(self.builder.Output())


def image_classifier_metadata(name, description, version, input_size, input_range,
                              normalization=None, labels_file=None, author=None):
    """The metadata flatbuffer (bytes) of an image classifier.

    Args:
        input_size: (height, width) of the RGB input.
        input_range: (min, max) of the input values, e.g. (0, 255).
        normalization: (mean, std) that the client applies before feeding a float input
            (MediaPipe requires it for float inputs); None for quantized inputs.
        labels_file: name of the associated labels file (one class per line), or None.
    """
    w = _Writer()
    # Input: an RGB image.
    input_name = w.string("image")
    input_text = w.string(
        f"RGB image of {input_size[1]}x{input_size[0]} pixels, values in "
        f"[{input_range[0]:g}, {input_range[1]:g}]; the model normalizes it itself.")
    image_size = w.table({0: ("uint", input_size[1]), 1: ("uint", input_size[0])})
    image_properties = w.table({0: ("byte", _RGB), 1: image_size})
    input_content = w.table({0: ("byte", _IMAGE_PROPERTIES), 1: image_properties})
    input_fields = {0: input_name, 1: input_text, 3: input_content}
    if normalization is not None:
        mean, std = w.floats(normalization[0]), w.floats(normalization[1])
        options = w.table({0: mean, 1: std})
        unit = w.table({0: ("byte", _NORMALIZATION_OPTIONS), 1: options})
        input_fields[4] = w.tables([unit])
    maximum, minimum = w.floats([input_range[1]]), w.floats([input_range[0]])
    input_fields[5] = w.table({0: maximum, 1: minimum})
    input_tensor = w.table(input_fields)
    # Output: one probability per class, named by the labels file.
    output_fields = {0: w.string("probability"),
                     1: w.string("Probability of each class, in the order of the labels.")}
    output_fields[3] = w.table({0: ("byte", _FEATURE_PROPERTIES), 1: w.table({})})
    maximum, minimum = w.floats([1.0]), w.floats([0.0])
    output_fields[5] = w.table({0: maximum, 1: minimum})
    if labels_file is not None:
        file_name = w.string(labels_file)
        file_text = w.string("The class names, one per line, in the order of the outputs.")
        labels = w.table({0: file_name, 1: file_text, 2: ("byte", _TENSOR_AXIS_LABELS)})
        output_fields[6] = w.tables([labels])
    output_tensor = w.table(output_fields)
    subgraph = w.table({2: w.tables([input_tensor]), 3: w.tables([output_tensor])})
    model_fields = {0: w.string(name), 1: w.string(description), 2: w.string(version),
                    3: w.tables([subgraph]), 7: w.string(MIN_PARSER_VERSION)}
    if author:
        model_fields[4] = w.string(author)
    return w.finish(w.table(model_fields))


def with_metadata(model_content, metadata, associated_files=None):
    """`model_content` (a `.tflite`'s bytes) with `metadata` in it and `associated_files`
    ({name: bytes}) appended as an uncompressed zip archive. Metadata already there is
    replaced."""
    from ghostnet_tf.compat import tflite_model_bytes, tflite_model_object, tflite_schema

    schema = tflite_schema()
    model = tflite_model_object(model_content)
    model.metadata = [entry for entry in (model.metadata or [])
                      if entry.name.decode() != METADATA_NAME]
    buffer = schema.BufferT()
    buffer.data = np.frombuffer(metadata, dtype=np.uint8)
    model.buffers.append(buffer)
    entry = schema.MetadataT()
    entry.name = METADATA_NAME
    entry.buffer = len(model.buffers) - 1
    model.metadata.append(entry)
    content = tflite_model_bytes(model)
    if not associated_files:
        return content
    archive = io.BytesIO(content)
    archive.seek(0, io.SEEK_END)
    with zipfile.ZipFile(archive, "a", zipfile.ZIP_STORED) as files:
        for name, data in associated_files.items():
            files.writestr(name, data)
    return archive.getvalue()


def associated_files(model_content):
    """{name: bytes} of the files appended to a `.tflite`."""
    archive = io.BytesIO(model_content)
    if not zipfile.is_zipfile(archive):
        return {}
    with zipfile.ZipFile(archive) as files:
        return {name: files.read(name) for name in files.namelist()}
