"""keras-hub presets against the library: the same images through keras-hub's preprocessing
and through the library's.

    python benchmarks/keras_hub_agreement.py --data-dir /usr/share/datasets/fashion-mnist \
        --runs checkpoints/fashion_mnist_ghostnetv2_100_seed0
    python benchmarks/keras_hub_agreement.py \
        --photos checkpoints/fashion_mnist_ghostnetv2_100_seed0/best.keras ghostnet_100

`--runs`: trained Fashion-MNIST runs (28x28 grayscale images, trained at their model's size
with data.image_size). Each run's best.keras is exported with `export.py --formats keras_hub
--resize-arrays`; the preset is given the 10,000 raw test images (28x28, gray repeated to
RGB when the model takes RGB) and resizes them itself, the library's model the images of
eval.py's pipeline. Prints both test top-1 and their agreement.

`--photos`: RGB models (.keras files, or registry names: the published weights when they are
in the cache, else random weights with random batch-norm statistics, whose outputs hardly
depend on the image: the table says which) on real photographs (scikit-image's, the
benchmarks extra) of several sizes and aspect ratios, saved as JPEGs: the library reads each
file as predict.py does (the registry's evaluation transform for the model), the preset gets
the decoded photo. Prints the max |probability difference|, the top-1 agreement and, for
scale, the max difference between the library's probabilities of two photos, with the
registry transform and with crop_pct 1.0, which isolates what keras-hub's converter does not
do (the center crop fraction).
"""
import argparse
import os
import sys
import tempfile

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

import numpy as np  # noqa: E402

PHOTOS = ("astronaut", "chelsea", "coffee", "rocket", "camera", "cat", "immunohistochemistry")


def fashion_mnist_agreement(run, data_dir):
    """(library top-1, preset top-1, agreement) on the test split, for the run's best.keras."""
    import keras_hub

    from ghostnet_tf.data import make_dataset
    from ghostnet_tf.data.files import load_arrays
    from ghostnet_tf.data.source import DataSource
    from ghostnet_tf.export import export_model_file
    from ghostnet_tf.loading import load_keras_model

    source = DataSource("fashion_mnist", data_dir, resize_arrays=True)
    model = load_keras_model(os.path.join(run, "best.keras"))
    report, folder = export_model_file(os.path.join(run, "best.keras"),
                                       os.path.join(run, "keras_hub_export"), ["keras_hub"],
                                       source=source, check_images=1000, replace=True)
    classifier = keras_hub.models.ImageClassifier.from_preset(
        report["exports"]["keras_hub"]["path"])
    images, labels, _ = load_arrays("fashion_mnist", "test", data_dir)
    raw = np.repeat(images, model.input_shape[-1], axis=-1).astype("float32")
    preset = classifier.predict(raw, batch_size=256, verbose=0).argmax(-1)
    dataset, _ = make_dataset(source, "test", batch_size=256, training=False, shuffle=False,
                              array_shape=source.array_shape_for(model.input_shape[1:]))
    library, order = [], []
    for batch, batch_labels in dataset:
        library.append(model.predict_on_batch(batch).argmax(-1))
        order.append(batch_labels.numpy())
    library = np.concatenate(library)
    assert (np.concatenate(order) == labels).all(), "the pipeline reordered the test split"
    return (np.mean(library == labels), np.mean(preset == labels), np.mean(library == preset))


def photo_files(folder):
    """JPEGs of real photographs: each whole, and a tall and a wide crop of it."""
    import skimage.data
    import tensorflow as tf

    paths = []
    for name in PHOTOS:
        photo = getattr(skimage.data, name)()
        photo = np.repeat(photo[..., None], 3, -1) if photo.ndim == 2 else photo[..., :3]
        height, width = photo.shape[:2]
        for part, crop in (("whole", photo), ("tall", photo[:, : width // 2]),
                           ("wide", photo[: height // 2])):
            path = os.path.join(folder, f"{name}_{part}.jpg")
            with open(path, "wb") as file:
                file.write(tf.io.encode_jpeg(np.ascontiguousarray(crop), quality=95).numpy())
            paths.append(path)
    return paths


def photo_differences(spec, paths):
    """{transform: (max |probability difference|, top-1 agreement, max difference between
    photos)} of the preset of `spec` (a .keras file or a registry name) and the library on
    the photos at `paths`, and which weights were used."""
    import tensorflow as tf

    import ghostnet_tf
    from ghostnet_tf.export.keras_hub_preset import image_classifier
    from ghostnet_tf.loading import load_keras_model, read_image
    from ghostnet_tf.models import EvalTransform, model_entry, registry
    from ghostnet_tf.weights import pretrained_weights_path
    from tests.numerics import randomize_batch_norms

    if spec.endswith(".keras"):
        model, weights = load_keras_model(spec), "trained"
    else:
        cached = [tag for tag in model_entry(spec).weights
                  if os.path.exists(pretrained_weights_path(spec, tag))]
        model, weights = ((ghostnet_tf.get_model(spec, weights=cached[0]), cached[0]) if cached
                          else (randomize_batch_norms(ghostnet_tf.get_model(spec), seed=0),
                                "random"))
    input_shape = model.input_shape[1:]
    registry_transform = registry.eval_transform_for(model.name, input_shape[0])
    classifier = image_classifier(model, registry_transform)
    photos = [tf.io.decode_jpeg(tf.io.read_file(path)).numpy() for path in paths]
    preset = np.concatenate([classifier.predict(photo[None].astype("float32"), verbose=0)
                             for photo in photos])
    results = {}
    for transform in (registry_transform,
                      EvalTransform(registry_transform.interpolation, 1.0)):
        images = np.stack([read_image(path, input_shape, transform) for path in paths])
        library = model.predict(images, verbose=0)
        results[f"{transform.interpolation}, crop_pct {transform.crop_pct}"] = (
            float(np.abs(library - preset).max()),
            float(np.mean(library.argmax(-1) == preset.argmax(-1))),
            float(np.abs(library[:, None] - library[None]).max()))
    return results, f"{model.name} ({weights})"


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--runs", nargs="*", default=[], help="trained Fashion-MNIST runs")
    parser.add_argument("--data-dir", help="Fashion-MNIST's files")
    parser.add_argument("--photos", nargs="*", default=[],
                        help="RGB models: .keras files or registry names")
    args = parser.parse_args()
    if args.runs:
        print("| run | library top-1 | preset top-1 (keras-hub preprocessing) | agreement |")
        print("| --- | ---: | ---: | ---: |")
        for run in args.runs:
            library, preset, agreement = fashion_mnist_agreement(run, args.data_dir)
            print(f"| {os.path.basename(run.rstrip('/'))} | {100 * library:.2f}% | "
                  f"{100 * preset:.2f}% | {100 * agreement:.2f}% |")
    if args.photos:
        with tempfile.TemporaryDirectory() as folder:
            paths = photo_files(folder)
            print(f"\n{len(paths)} photographs ({', '.join(PHOTOS)}: whole, left half, top "
                  "half)\n")
            print("| model (weights) | library transform | max abs probability difference | "
                  "top-1 agreement | max difference between two photos |")
            print("| --- | --- | ---: | ---: | ---: |")
            for spec in args.photos:
                results, label = photo_differences(spec, paths)
                for transform, (difference, agreement, spread) in results.items():
                    print(f"| {label} | {transform} | {difference:.2e} | "
                          f"{100 * agreement:.0f}% | {spread:.2e} |")
    return 0


if __name__ == "__main__":
    sys.exit(main())
