"""How large the distillation term's gradient is beside the label term's, at the first step.

    python benchmarks/distillation_gradients.py --teacher T.keras [--student ghost_resnet56]
        [--dataset fashion_mnist] [--batch 128] [--kernels A.keras B.keras ...]

Builds the student (a registry model, fresh weights, seed 0) for the dataset's images, takes
the first `--batch` training images, and prints, for the trainer's loss (`Distiller`, weight
1, temperature 1): the label cross-entropy, the distillation cross-entropy, the norms of their
gradients over the student's weights, the cosine between the two gradients and the norm of
their sum. With `--kernels`, also the sum of squares of the convolution and dense kernels of
each `.keras` file (what the trainer's L2 weight decay acts on).
"""
import argparse
import os
import sys

import numpy as np

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))


def kernel_sum_of_squares(model):
    from ghostnet_tf.training.trainer import KERNEL_NAMES  # what weight decay acts on

    return sum(float(np.sum(np.square(variable.numpy()))) for variable in model.trainable_weights
               if variable.path.split("/")[-1] in KERNEL_NAMES)


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--teacher", required=True, help="the teacher's .keras file")
    parser.add_argument("--student", default="ghost_resnet56", help="a registry model name")
    parser.add_argument("--dataset", default="fashion_mnist")
    parser.add_argument("--batch", type=int, default=128)
    parser.add_argument("--kernels", nargs="*", default=(), help=".keras files")
    args = parser.parse_args(argv)

    import keras
    import tensorflow as tf

    from ghostnet_tf.data.files import load_arrays
    from ghostnet_tf.loading import load_keras_model
    from ghostnet_tf.models import get_model
    from ghostnet_tf.training.distillation import Distiller, distillation_loss

    images, labels, info = load_arrays(args.dataset, "train")
    images, labels = images[:args.batch].astype("float32"), labels[:args.batch]
    keras.utils.set_random_seed(0)
    student = get_model(args.student, input_shape=info.image_shape, classes=info.num_classes)
    teacher = load_keras_model(args.teacher)
    distiller = Distiller(student, teacher)
    distiller.compile(optimizer="sgd", loss=keras.losses.SparseCategoricalCrossentropy())
    teacher_probabilities = teacher(images, training=False)
    weights = student.trainable_weights
    with tf.GradientTape(persistent=True) as tape:
        predictions = student(images, training=True)
        label_loss = keras.losses.SparseCategoricalCrossentropy()(labels, predictions)
        teacher_loss = distillation_loss(teacher_probabilities, predictions)
        total = distiller.compute_loss(images, labels, predictions, training=True)
    flat = [tf.concat([tf.reshape(g, [-1]) for g in tape.gradient(loss, weights)], 0)
            for loss in (label_loss, teacher_loss, total)]
    norms = [float(tf.norm(g)) for g in flat]
    cosine = float(tf.reduce_sum(flat[0] * flat[1])) / (norms[0] * norms[1])
    print(f"teacher top-1 on the batch: "
          f"{np.mean(np.argmax(teacher_probabilities, -1) == labels):.4f}")
    print("| term | loss | gradient norm |\n| --- | ---: | ---: |")
    print(f"| label cross-entropy | {float(label_loss):.4f} | {norms[0]:.3f} |")
    print(f"| distillation (weight 1, T 1) | {float(teacher_loss):.4f} | {norms[1]:.3f} |")
    print(f"| trainer's loss (the sum; L2 not set here) | {float(total):.4f} | {norms[2]:.3f} |")
    print(f"cosine between the label and distillation gradients: {cosine:.3f}")
    for path in args.kernels:
        print(f"{path}: kernel sum of squares {kernel_sum_of_squares(load_keras_model(path)):,.0f}")


if __name__ == "__main__":
    main()
