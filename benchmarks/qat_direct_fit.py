"""A short fine-tune of a trained run by a plain `fit`, outside train.py: float, float with
its batch norms frozen, or quantization-aware. It separates what the quantization-aware model
does from what the trainer around it does.

    python benchmarks/qat_direct_fit.py --run checkpoints/fashion_mnist_ghostnetv2_100_seed0 \
        --data-dir /usr/share/datasets/fashion-mnist --mode qat --lr 0.005

The run's best.keras is fine-tuned `--steps` steps on the run's own training stream (its
config.yaml: data, augmentation, seed, batch), SGD with momentum 0.9 at a constant `--lr`
(or with `--cosine` decayed to 0 over the steps, as train.py's schedule does), no weight
decay, and evaluated on the first `--test-batches` validation batches (256 images each).
`--seed` seeds Keras as train.py does (dropout masks); unseeded runs differ run to run.
Prints one line: the mode, the schedule, the seed and the test metrics.
"""
import argparse
import os
import sys

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

import keras  # noqa: E402

from ghostnet_tf.qat import quantization_aware  # noqa: E402
from ghostnet_tf.training.config import load_config  # noqa: E402
from ghostnet_tf.training.trainer import make_data  # noqa: E402


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--run", required=True, help="a trained run (best.keras, config.yaml)")
    parser.add_argument("--data-dir")
    parser.add_argument("--mode", choices=("float", "float_frozen_bn", "qat"), required=True)
    parser.add_argument("--lr", type=float, required=True)
    parser.add_argument("--steps", type=int, default=20)
    parser.add_argument("--test-batches", type=int, default=8)
    parser.add_argument("--cosine", action="store_true", help="cosine decay of the lr to 0")
    parser.add_argument("--seed", type=int,
                        help="seed Keras (dropout masks) as train.py does; unseeded if left out")
    args = parser.parse_args()
    if args.seed is not None:
        keras.utils.set_random_seed(args.seed)

    overrides = [f"data.data_dir={args.data_dir}"] if args.data_dir else []
    config = load_config(os.path.join(args.run, "config.yaml"), overrides)
    train_stream, validation, _ = make_data(config, config["data"]["batch_size"])
    model = keras.saving.load_model(os.path.join(args.run, "best.keras"), compile=False)
    if args.mode == "float_frozen_bn":
        for layer in model._flatten_layers():
            if isinstance(layer, keras.layers.BatchNormalization):
                layer.trainable = False  # inference mode: the moving statistics, fixed
    if args.mode == "qat":
        model = quantization_aware(model)
    lr = keras.optimizers.schedules.CosineDecay(args.lr, args.steps) if args.cosine else args.lr
    model.compile(keras.optimizers.SGD(lr, momentum=0.9),
                  keras.losses.SparseCategoricalCrossentropy(), metrics=["accuracy"])
    model.fit(train_stream(0, args.steps), steps_per_epoch=args.steps, epochs=1, verbose=0)
    metrics = model.evaluate(validation.take(args.test_batches), verbose=0, return_dict=True)
    seed = "unseeded" if args.seed is None else f"seed {args.seed}"
    schedule = "cosine" if args.cosine else "constant"
    print(f"{args.mode} lr {args.lr:g} {schedule}, {args.steps} steps, {seed}: test top-1 "
          f"{metrics['accuracy']:.2%} on {args.test_batches * 256} images, loss "
          f"{metrics['loss']:.4f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
