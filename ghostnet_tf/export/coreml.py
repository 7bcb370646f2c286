"""The Core ML target: `model.mlpackage`, for iPhone and Mac apps (Core ML, Vision). Needs
coremltools (the coreml extra).

coremltools converts the inference copy's float function (batch 1, the model's input shape)
to an ML program. Input "image": an image (RGB, or grayscale for a one-channel model), whose
pixel values in [0, 255] the model normalizes itself, so a `CVPixelBuffer` or Vision's
`VNCoreMLRequest` feeds it as it is. With class names the model is a Core ML classifier
(outputs "classLabel" and "classLabelProbs"); without, one output "probabilities". Core ML
computes ML programs in float16 by default (what the Neural Engine runs). Prediction needs
macOS: on other systems the file is converted and its spec read, not run, so export does not
check it against Keras there.
"""
import collections
import os
import platform

from ghostnet_tf.checks import ArgumentError

SUFFIX = None  # a folder
MARKER = "Manifest.json"  # the file that tells an .mlpackage folder from other folders


def runs_here():
    """Whether Core ML can predict on this machine (macOS only)."""
    return platform.system() == "Darwin"


def mlpackage(model, class_names=None):
    """coremltools' ML program of `model` (the inference copy)."""
    import coremltools
    import tensorflow as tf

    shape = (1,) + tuple(model.input_shape[1:])
    function = tf.function(lambda images: model(images, training=False), input_signature=[
        tf.TensorSpec(shape, tf.float32, name="image")]).get_concrete_function()
    layout = (coremltools.colorlayout.RGB if shape[-1] == 3
              else coremltools.colorlayout.GRAYSCALE)
    image = coremltools.ImageType(name="image", shape=shape, color_layout=layout,
                                  channel_first=False)
    config = None if class_names is None else coremltools.ClassifierConfig(list(class_names))
    converted = coremltools.convert([function], source="tensorflow", inputs=[image],
                                    convert_to="mlprogram", classifier_config=config)
    if class_names is not None:
        return converted
    spec = converted.get_spec()  # the graph's output is called "Identity"
    coremltools.utils.rename_feature(spec, spec.description.output[0].name, "probabilities")
    return coremltools.models.MLModel(spec, weights_dir=converted.weights_dir)


def mlpackage_op_counts(spec):
    """{op type: count} of an ML program's main function, constants left out."""
    operations = [operation for function in spec.mlProgram.functions.values()
                  for block in function.block_specializations.values()
                  for operation in block.operations if operation.type != "const"]
    return dict(sorted(collections.Counter(op.type for op in operations).items()))


def steps(formats):
    return 1


def write(model, folder, formats, conversion, step):
    """Write `model.mlpackage` of `model` (the inference copy) into `folder`."""
    (row,) = formats
    step(f"converting {row.file}")
    converted = mlpackage(model, conversion.class_names)
    converted.save(os.path.join(folder, row.file))
    spec = converted.get_spec()
    return {row.name: {"input": spec.description.input[0].name,
                       "outputs": [output.name for output in spec.description.output],
                       "ops": mlpackage_op_counts(spec)}}


def load(path, runtime=None):
    raise ArgumentError("model", f"{path}: Core ML runs .mlpackage files on macOS and iOS "
                                 "only; on this system it is converted, not run.")
