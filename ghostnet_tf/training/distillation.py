"""Knowledge distillation in `model.fit`: the student learns from the labels and from a
teacher's predictions on the same (augmented) batch, as GhostNetV3 is trained.

`Distiller` wraps the student for `fit` only (the keras.io distillation example's
`compute_loss` pattern, backend-agnostic): its loss is `label_weight` x the student's
compiled loss (label-smoothed cross-entropy) plus `weight` x the cross-entropy between the
teacher's and the student's softmax at `temperature`, scaled by T^2. By default the two
weights sum to 1 (`label_weight` = 1 - `weight`): the two terms' gradients are about as
large and nearly parallel, so their plain sum would double the step of a recipe tuned
without a teacher. GhostNetV3's train.py sums them (both weights 1, no temperature). The
teacher runs in inference mode and is not trained; checkpoints save the student alone.
"""
import os

import keras
from keras import ops

from ghostnet_tf.checks import ArgumentError
from ghostnet_tf.loading import load_keras_model
from ghostnet_tf.models import registry
from ghostnet_tf.training.config import ConfigError
from ghostnet_tf.weights import KERAS_SUFFIX

# Probabilities are clipped before their log, as Keras' cross-entropy does.
_EPSILON = 1e-7


def soften(probabilities, temperature):
    """softmax(logits / temperature) from softmax(logits): log p is the logits up to a
    constant, which the softmax removes."""
    if temperature == 1:
        return probabilities
    return ops.softmax(ops.log(ops.clip(probabilities, _EPSILON, 1.0)) / temperature, axis=-1)


def distillation_loss(teacher, student, temperature=1.0):
    """Mean over the batch of -sum softmax(teacher / T) log softmax(student / T), times T^2
    (Hinton et al.: gradients of the same size at every temperature). Both arguments are
    probabilities."""
    teacher, student = soften(teacher, temperature), soften(student, temperature)
    # A Loss object, not the function: under a tf.distribute strategy it divides by the
    # number of replicas, as the compiled loss does, before the gradients are summed.
    return keras.losses.CategoricalCrossentropy()(teacher, student) * temperature ** 2


class Distiller(keras.Model):
    """`student` (what is trained and saved) with a frozen `teacher` in its training loss."""

    def __init__(self, student, teacher, weight=0.5, temperature=1.0, label_weight=None,
                 **kwargs):
        super().__init__(name=student.name, **kwargs)
        self.student, self.teacher = student, teacher
        self.teacher.trainable = False
        self.weight, self.temperature = float(weight), float(temperature)
        self.label_weight = 1.0 - self.weight if label_weight is None else float(label_weight)
        self.built = True  # both models are (BackupAndRestore needs a built model)

    def call(self, inputs, training=None):
        return self.student(inputs, training=training)

    def compute_loss(self, x=None, y=None, y_pred=None, sample_weight=None, training=True):
        loss = super().compute_loss(x, y, y_pred, sample_weight, training)
        if not training:  # validation reports the student's own loss
            return loss
        teacher = ops.stop_gradient(ops.cast(self.teacher(x, training=False), y_pred.dtype))
        return (self.label_weight * loss
                + self.weight * distillation_loss(teacher, y_pred, self.temperature))


def student_of(model):
    """The model that checkpoints hold: the student of a Distiller, else `model`."""
    return model.student if isinstance(model, Distiller) else model


def check_teacher_config(config):
    """Refuse a training.teacher that cannot be loaded, before any data is read."""
    source = config["training"]["teacher"]
    if source is None:
        return
    if str(source).endswith(KERAS_SUFFIX):
        if not os.path.isfile(source):
            raise ConfigError(f"training.teacher {source}: no such file.")
        return
    try:
        entry = registry.model_entry(source)
    except ArgumentError:
        raise ConfigError(f"training.teacher {source!r} is neither a .keras file nor a "
                          "registry model (ghostnet-profile --list).") from None
    if not entry.weights:
        raise ConfigError(f"training.teacher {source}: no published weights for it; give a "
                          "registry model with weights or a .keras file of a trained run.")


def load_teacher(config, student):
    """The teacher that training.teacher names (None for none): a `.keras` file, or a
    registry model with its published weights, checked against `student`'s classes and
    input size. The trainer has run `check_teacher_config` before reading any data."""
    source = config["training"]["teacher"]
    if source is None:
        return None
    if str(source).endswith(KERAS_SUFFIX):
        try:
            teacher = load_keras_model(source)
        except ArgumentError as error:
            raise ConfigError(f"training.teacher {error.problem}") from None
    else:
        entry = registry.model_entry(source)
        teacher = entry.build(weights=next(iter(entry.weights)),
                              input_shape=tuple(student.input_shape[1:]))
    classes, student_classes = teacher.output_shape[-1], student.output_shape[-1]
    if classes != student_classes:
        raise ConfigError(f"training.teacher {source} predicts {classes} classes; the student "
                          f"{student.name} has {student_classes}.")
    shape, student_shape = teacher.input_shape[1:], student.input_shape[1:]
    if any(a is not None and b is not None and a != b for a, b in zip(shape, student_shape)):
        raise ConfigError(f"training.teacher {source} takes images of {tuple(shape)}; the "
                          f"student {student.name} takes {tuple(student_shape)}.")
    return teacher
