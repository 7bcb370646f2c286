"""Is the ImageNet input pipeline faster than GhostNet-1.0 consumes images, on this machine?

Writes an ImageNet-like folder of JPEGs (crops of the real photographs that scikit-image
ships, resized so the long side is 500 pixels, like most ImageNet images), then measures
images/s of:
- the training pipeline (random-resized crop decoded from the JPEG, resize to 224, flip),
- the evaluation pipeline (resize the short side to 256, center-crop 224),
- GhostNet-1.0 training (`fit`) and inference on synthetic in-memory batches, which is the
  model's own speed, free of any input cost (train.py's synthetic-data mode measures the same),
and prints the ratios: a pipeline keeps up when its ratio is >= 1.

Usage: python benchmarks/input_pipeline.py [--images 1024] [--steps 20] [--model-steps 8]
Needs the `benchmarks` extra (scikit-image).
"""
import argparse
import os
import tempfile
import time

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

import numpy as np  # noqa: E402
import tensorflow as tf  # noqa: E402

PHOTOS = ("astronaut", "chelsea", "coffee", "rocket", "hubble_deep_field",
          "immunohistochemistry", "retina")


def write_jpeg_folder(root, count, classes=10, seed=0):
    """`count` JPEGs in `classes` class folders, crops of real photographs at ImageNet sizes.
    Returns the mean file size in bytes."""
    import skimage.data

    rng = np.random.default_rng(seed)
    photos = [getattr(skimage.data, name)()[..., :3] for name in PHOTOS]
    sizes = []
    for i in range(count):
        photo = photos[i % len(photos)]
        height, width = photo.shape[:2]
        # A random crop of 40-100% of each side, then the long side resized to 500.
        crop_h = int(height * rng.uniform(0.4, 1.0))
        crop_w = int(width * rng.uniform(0.4, 1.0))
        top = rng.integers(0, height - crop_h + 1)
        left = rng.integers(0, width - crop_w + 1)
        crop = photo[top:top + crop_h, left:left + crop_w]
        scale = 500 / max(crop_h, crop_w)
        resized = tf.image.resize(crop, (round(crop_h * scale), round(crop_w * scale)))
        data = tf.io.encode_jpeg(tf.cast(tf.clip_by_value(resized, 0, 255), tf.uint8),
                                 quality=90).numpy()
        folder = os.path.join(root, "train", f"class_{i % classes:02d}")
        os.makedirs(folder, exist_ok=True)
        with open(os.path.join(folder, f"image_{i:05d}.JPEG"), "wb") as handle:
            handle.write(data)
        sizes.append(len(data))
    return float(np.mean(sizes))


def pipeline_images_per_second(dataset, batch_size, warmup, steps):
    iterator = iter(dataset.repeat())
    for _ in range(warmup):
        next(iterator)
    start = time.perf_counter()
    for _ in range(steps):
        next(iterator)
    return steps * batch_size / (time.perf_counter() - start)


class _BatchTimes:
    def __init__(self):
        import keras

        times = self.times = []

        class Recorder(keras.callbacks.Callback):
            def on_train_batch_end(self, batch, logs=None):
                times.append(time.perf_counter())
        self.callback = Recorder()


def model_images_per_second(batch_size, warmup, steps):
    """GhostNet-1.0 (224x224, 1000 classes) training and inference images/s on synthetic data."""
    import keras

    from ghostnet_tf import GhostNet
    from ghostnet_tf.data import make_synthetic_dataset

    model = GhostNet(width=1.0)
    model.compile(optimizer=keras.optimizers.SGD(0.1, momentum=0.9),
                  loss="sparse_categorical_crossentropy")
    data = make_synthetic_dataset((224, 224, 3), 1000, batch_size, warmup + steps)
    recorder = _BatchTimes()
    model.fit(data, epochs=1, verbose=0, callbacks=[recorder.callback])
    train = steps * batch_size / (recorder.times[-1] - recorder.times[warmup - 1])
    images = next(iter(data))[0]
    for _ in range(warmup):
        model.predict_on_batch(images)
    start = time.perf_counter()
    for _ in range(steps):
        model.predict_on_batch(images)
    infer = steps * batch_size / (time.perf_counter() - start)
    return train, infer, model.jit_compile


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--images", type=int, default=1024, help="JPEGs to write")
    parser.add_argument("--batch-size", type=int, default=128, help="pipeline batch size")
    parser.add_argument("--steps", type=int, default=20, help="timed pipeline batches")
    parser.add_argument("--model-batch-size", type=int, default=32)
    parser.add_argument("--model-steps", type=int, default=8, help="timed model batches")
    args = parser.parse_args()

    from ghostnet_tf.data import make_dataset
    from ghostnet_tf.data.source import DataSource

    with tempfile.TemporaryDirectory() as root:
        mean_bytes = write_jpeg_folder(root, args.images)
        rows = []
        for split, label in (("train", "train: random-resized crop 224 + flip"),
                             ("eval", "eval: resize 256 + center crop 224")):
            dataset, _ = make_dataset(DataSource("folder", root), "train",
                                      batch_size=args.batch_size,
                                      training=split == "train", image_size=224)
            rows.append((label, pipeline_images_per_second(
                dataset, args.batch_size, warmup=3, steps=args.steps)))
    train_speed, infer_speed, jit = model_images_per_second(
        args.model_batch_size, warmup=2, steps=args.model_steps)

    print(f"{os.cpu_count()} CPU cores; {args.images} JPEGs of {mean_bytes / 1024:.0f} KiB "
          f"on average (long side 500), TensorFlow {tf.__version__}, jit_compile={jit}\n")
    print("| what | images/s | ratio to GhostNet-1.0 |")
    print("| --- | ---: | ---: |")
    print(f"| pipeline, {rows[0][0]} (batch {args.batch_size}) | {rows[0][1]:.0f} | "
          f"{rows[0][1] / train_speed:.1f}x its training |")
    print(f"| pipeline, {rows[1][0]} (batch {args.batch_size}) | {rows[1][1]:.0f} | "
          f"{rows[1][1] / infer_speed:.1f}x its inference |")
    print(f"| GhostNet-1.0 training, synthetic data (batch {args.model_batch_size}) | "
          f"{train_speed:.1f} | 1.0x |")
    print(f"| GhostNet-1.0 inference, synthetic data (batch {args.model_batch_size}) | "
          f"{infer_speed:.1f} | |")
    keeps_up = rows[0][1] >= train_speed and rows[1][1] >= infer_speed
    print(f"\nThe pipelines {'keep up with' if keeps_up else 'DO NOT keep up with'} the model.")


if __name__ == "__main__":
    main()
