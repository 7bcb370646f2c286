import os
import subprocess
import sys

import numpy as np
import pytest
import tensorflow as tf

from ghostnet_tf.data import (Augmentation, DataSource, load_arrays, make_dataset,
                              make_synthetic_dataset)
from ghostnet_tf.data import files, images, readers
from tests.datasets import (
    class_image, jpeg_bytes, label_of_image, write_cifar, write_idx, write_image_folder,
    write_tfrecords)


def all_examples(dataset):
    images, labels = [], []
    for batch_images, batch_labels in dataset:
        images.append(batch_images.numpy())
        labels.append(batch_labels.numpy())
    return np.concatenate(images), np.concatenate(labels)


# ---------------------------------------------------------------------------- sources
@pytest.mark.parametrize("archive", [True, False])
def test_cifar10_from_archive_or_folder(tmp_path, archive):
    path, expected = write_cifar(tmp_path, "cifar10", archive=archive)
    images, labels, info = load_arrays("cifar10", "train", path)
    want_images = np.concatenate([expected[f"data_batch_{i}"][0] for i in range(1, 6)])
    want_labels = sum((expected[f"data_batch_{i}"][1] for i in range(1, 6)), [])
    np.testing.assert_array_equal(images, want_images)
    np.testing.assert_array_equal(labels, want_labels)
    assert info.num_examples == 30 and info.class_names[0] == "airplane"
    # The folder that holds the archive works too.
    test_images, _, _ = load_arrays("cifar10", "test", tmp_path)
    np.testing.assert_array_equal(test_images, expected["test_batch"][0])


def test_cifar100_and_its_class_names(tmp_path):
    path, expected = write_cifar(tmp_path, "cifar100")
    images, labels, info = load_arrays("cifar100", "test", path)
    np.testing.assert_array_equal(labels, expected["test"][1])
    assert info.num_classes == 100 and info.class_names[5] == "class_5"


def test_cifar_found_in_the_keras_cache(tmp_path, monkeypatch):
    monkeypatch.setattr(files, "KERAS_DATASETS_DIR", str(tmp_path))
    write_cifar(tmp_path, "cifar10", archive=False)
    assert load_arrays("cifar10", "test")[2].num_examples == 6


def test_idx_files_of_fashion_mnist(tmp_path):
    images, labels = write_idx(tmp_path, count=12, split="test")
    got_images, got_labels, info = load_arrays("fashion_mnist", "test", tmp_path)
    np.testing.assert_array_equal(got_images[..., 0], images)
    np.testing.assert_array_equal(got_labels, labels)
    assert got_images.shape == (12, 28, 28, 1) and info.class_names[-1] == "Ankle boot"


@pytest.mark.slow
def test_numpy_readers_need_no_tensorflow(tmp_path):
    write_idx(tmp_path, split="test")
    code = ("import sys; from ghostnet_tf.data import load_arrays; "
            f"x, y, _ = load_arrays('fashion_mnist', 'test', {str(tmp_path)!r}); "
            "assert 'tensorflow' not in sys.modules, 'TensorFlow was imported'; print(len(x))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                         env={**os.environ, "KERAS_BACKEND": "jax"}, check=True)
    assert out.stdout.strip() == "12"


def test_array_pipeline_train_and_test(tmp_path):
    path, expected = write_cifar(tmp_path, "cifar10")
    test, info = make_dataset(DataSource("cifar10", path), "test", batch_size=4)
    images, labels = all_examples(test)
    assert images.dtype == np.float32 and images.shape == (6, 32, 32, 3)
    np.testing.assert_array_equal(images, expected["test_batch"][0])  # the plain image
    train, _ = make_dataset(DataSource("cifar10", path), "train", batch_size=4, seed=3)
    images, labels = all_examples(train)
    assert images.shape == (28, 32, 32, 3)  # drop_remainder: 30 -> 7 batches of 4
    assert set(labels) <= set(sum((expected[f"data_batch_{i}"][1] for i in range(1, 6)), []))
    # Padded crops have zero rows or columns at their edges, which the random originals
    # never have; a crop is unshifted with probability 1/81, so nearly all of them show it.
    def zero_border(image):
        return any(not edge.any() for edge in (image[0], image[-1], image[:, 0], image[:, -1]))
    originals = np.concatenate([expected[f"data_batch_{i}"][0] for i in range(1, 6)])
    assert not any(zero_border(image) for image in originals)
    assert sum(zero_border(image) for image in images) >= 24


def test_pad_crop_flip_is_a_shifted_possibly_flipped_copy():
    from ghostnet_tf.data.transforms import pad_crop_flip

    image = np.arange(32 * 32 * 3, dtype=np.float32).reshape(32, 32, 3) + 1
    padded = np.pad(image, ((4, 4), (4, 4), (0, 0)))
    # The one definition, against numpy: offsets into the padded image, then the mirror.
    for dy, dx, flip in ((0, 0, False), (8, 3, False), (5, 8, True)):
        crop = padded[dy:dy + 32, dx:dx + 32]
        np.testing.assert_array_equal(
            tf.convert_to_tensor(pad_crop_flip(image, dy, dx, flip)).numpy(),
            crop[:, ::-1] if flip else crop)
    # The tf.data path's random draw gives one of those copies.
    out = images.random_pad_crop_flip(tf.constant(image), seed=5).numpy()
    found = any(np.array_equal(candidate[dy:dy + 32, dx:dx + 32], out)
                for candidate in (padded, padded[:, ::-1])
                for dy in range(9) for dx in range(9))
    assert found


def test_image_folder_train_and_val_keep_labels(tmp_path):
    write_image_folder(tmp_path, split="train")
    write_image_folder(tmp_path, split="val", per_class=2)
    val, info = make_dataset(DataSource("folder", tmp_path), "test", batch_size=4, image_size=32)
    images, labels = all_examples(val)
    assert info.class_names == ("n01", "n02", "n03") and info.num_examples == 6
    assert images.shape == (6, 32, 32, 3)
    assert [label_of_image(image) for image in images] == list(labels)
    train, _ = make_dataset(DataSource("imagenet", tmp_path),
                            "train", batch_size=3, image_size=40, seed=1)
    images, labels = all_examples(train)
    assert images.shape == (9, 40, 40, 3) and sorted(labels) == [0, 0, 0, 1, 1, 1, 2, 2, 2]
    assert [label_of_image(image) for image in images] == list(labels)


def test_flat_val_folder_with_labels_file(tmp_path):
    write_image_folder(tmp_path, split="train", per_class=1)
    val = tmp_path / "val"
    val.mkdir()
    truth = [2, 0, 1, 1]
    for i, label in enumerate(truth):
        (val / f"ILSVRC2012_val_{i + 1:08d}.JPEG").write_bytes(jpeg_bytes(class_image(label)))
    (tmp_path / "labels.txt").write_text("n03\nn01\nn02\nn02\n")
    source = DataSource("imagenet", tmp_path, labels_file=tmp_path / "labels.txt")
    dataset, _ = make_dataset(source, "test", batch_size=2, image_size=32)
    images, labels = all_examples(dataset)
    assert list(labels) == truth == [label_of_image(image) for image in images]
    (tmp_path / "pairs.txt").write_text("\n".join(
        f"ILSVRC2012_val_{i + 1:08d}.JPEG {label}" for i, label in enumerate(truth)))
    dataset, _ = make_dataset(DataSource("imagenet", tmp_path, labels_file=tmp_path / "pairs.txt"),
                              "test", batch_size=2, image_size=32)
    assert list(all_examples(dataset)[1]) == truth


@pytest.mark.parametrize("one_based", [True, False])
def test_tfrecord_shards_with_either_label_convention(tmp_path, one_based):
    # The standard ImageNet build stores 1..1000 (0 was background); others store 0-based.
    write_tfrecords(tmp_path, split="train", one_based=one_based)
    expected = write_tfrecords(tmp_path, split="validation", per_shard=5, one_based=one_based)
    dataset, info = make_dataset(DataSource("imagenet", tmp_path),
                                 "test", batch_size=3, image_size=32)
    images, labels = all_examples(dataset)
    assert sorted(labels) == sorted(expected) and min(labels) == 0
    assert [label_of_image(image) for image in images] == list(labels)
    assert (info.num_classes, info.num_examples) == (3, 10)
    assert info.class_names == (("n00000000", "n00000001", "n00000002") if one_based
                                else ("0", "1", "2"))
    train, train_info = make_dataset(DataSource("imagenet", tmp_path),
                                     "train", batch_size=4, image_size=32, seed=2)
    images, labels = all_examples(train)
    assert images.shape == (8, 32, 32, 3) and train_info.num_examples == 8
    assert [label_of_image(image) for image in images] == list(labels)
    # The convention can be forced: 1-based labels read as they are are off by one.
    forced, _ = make_dataset(DataSource("imagenet", tmp_path, label_offset=0),
                             "test", batch_size=10, image_size=32)
    assert sorted(all_examples(forced)[1]) == sorted(label + int(one_based)
                                                     for label in expected)
    # The scan is cached beside the shards.
    assert list(tmp_path.glob(".ghostnet_tf_index_*.json"))


def test_tfds_dataset_in_a_data_dir(tmp_path):
    import tensorflow_datasets as tfds

    images = np.stack([class_image(i % 3, (32, 32)) for i in range(6)])
    labels = np.array([i % 3 for i in range(6)], np.int64)
    features = tfds.features.FeaturesDict({
        "image": tfds.features.Image(shape=(32, 32, 3)),
        "label": tfds.features.ClassLabel(names=["r", "g", "b"])})
    tfds.dataset_builders.store_as_tfds_dataset(
        name="tiny_colours", version="1.0.0", features=features, data_dir=tmp_path,
        split_datasets={"train": tf.data.Dataset.from_tensor_slices(
            {"image": images, "label": labels})})
    dataset, info = make_dataset(DataSource("tfds:tiny_colours", tmp_path),
                                 "train", batch_size=2, training=False)
    got_images, got_labels = all_examples(dataset)
    assert info.class_names == ("r", "g", "b") and info.num_examples == 6
    assert sorted(got_labels) == sorted(labels)
    assert [label_of_image(image) for image in got_images] == list(got_labels)


def test_tfds_dataset_of_encoded_images_uses_the_jpeg_pipeline(tmp_path):
    import tensorflow_datasets as tfds

    labels = np.array([i % 3 for i in range(6)], np.int64)
    images = [class_image(int(label), (40 + 8 * i, 56)) for i, label in enumerate(labels)]
    features = tfds.features.FeaturesDict({
        "image": tfds.features.Image(shape=(None, None, 3), encoding_format="jpeg"),
        "label": tfds.features.ClassLabel(names=["r", "g", "b"])})
    tfds.dataset_builders.store_as_tfds_dataset(
        name="tiny_photos", version="1.0.0", features=features, data_dir=tmp_path,
        split_datasets={"validation": [
            (f"{i}", {"image": image, "label": label})
            for i, (image, label) in enumerate(zip(images, labels))]})
    dataset, info = make_dataset(DataSource("tfds:tiny_photos", tmp_path),
                                 "test", batch_size=4, image_size=32)
    got_images, got_labels = all_examples(dataset)
    assert got_images.shape == (6, 32, 32, 3) and info.image_shape == (32, 32, 3)
    assert [label_of_image(image) for image in got_images] == list(got_labels)


def test_imagenet2012_manual_download_is_checked_first(tmp_path):
    with pytest.raises(FileNotFoundError, match="ILSVRC2012_img_train.tar"):
        make_dataset(DataSource("tfds:imagenet2012", tmp_path), "train")


def test_offline_small_dataset_says_which_files_to_put_where(tmp_path, monkeypatch):
    monkeypatch.setattr(files, "KERAS_DATASETS_DIR", str(tmp_path / "none"))
    monkeypatch.setattr(readers, "is_online", lambda host: False)
    with pytest.raises(FileNotFoundError, match="cifar-10-python.tar.gz"):
        make_dataset(DataSource("cifar10", tmp_path), "train")
    monkeypatch.setattr(files, "FASHION_MNIST_DIRS", ())
    with pytest.raises(FileNotFoundError, match="t10k-images-idx3-ubyte.gz"):
        make_dataset(DataSource("fashion_mnist", tmp_path), "test")


# ---------------------------------------------------------------------------- options
def test_deterministic_order_with_a_seed(tmp_path):
    path, _ = write_cifar(tmp_path, "cifar10")
    def labels(seed):
        dataset, _ = make_dataset(DataSource("cifar10", path),
                                  "train", batch_size=5, seed=seed, deterministic=True)
        return all_examples(dataset)[1].tolist()
    assert labels(11) == labels(11)
    assert labels(11) != labels(12)


def test_per_worker_sharding(tmp_path):
    path, expected = write_cifar(tmp_path, "cifar10")
    seen = []
    for worker in range(2):
        context = tf.distribute.InputContext(num_input_pipelines=2, input_pipeline_id=worker)
        dataset, _ = make_dataset(DataSource("cifar10", path),
                                  "test", batch_size=1, input_context=context)
        seen.append(all_examples(dataset)[0])
    assert len(seen[0]) == len(seen[1]) == 3
    np.testing.assert_array_equal(np.concatenate([seen[0], seen[1]]).sum(),
                                  expected["test_batch"][0].sum())


def test_mixup_cutmix_randaugment_erasing(tmp_path):
    path, _ = write_cifar(tmp_path, "cifar10")
    augmentation = Augmentation(randaugment_magnitude=9, random_erasing=0.5, mixup_alpha=0.2,
                                cutmix=1.0)
    dataset, _ = make_dataset(DataSource("cifar10", path),
                              "train", batch_size=6, seed=1, augmentation=augmentation)
    images, labels = all_examples(dataset)
    assert labels.shape == (30, 10) and labels.dtype == np.float32
    np.testing.assert_allclose(labels.sum(axis=1), 1.0, rtol=1e-5)
    assert (labels.max(axis=1) < 1).any()  # mixed labels
    assert images.min() >= 0 and images.max() <= 255


def test_synthetic_dataset():
    dataset = make_synthetic_dataset((32, 32, 3), 10, batch_size=4, steps=3)
    batches = list(dataset)
    assert len(batches) == 3 and batches[0][0].shape == (4, 32, 32, 3)


# ---------------------------------------------------------------------------- bad input
def test_truncated_and_non_image_files_name_the_file(tmp_path):
    write_image_folder(tmp_path, split="train", per_class=2)
    bad = tmp_path / "train" / "n02" / "n02_0.JPEG"
    bad.write_bytes(bad.read_bytes()[:300])  # a truncated download
    with pytest.raises(tf.errors.InvalidArgumentError, match="n02_0.JPEG"):
        all_examples(make_dataset(DataSource("folder", tmp_path),
                                  "train", batch_size=2, image_size=32)[0])
    (tmp_path / "train" / "n03" / "n03_1.JPEG").write_text("not an image at all")
    dataset, _ = make_dataset(DataSource("folder", tmp_path, skip_corrupt=True),
                              "train", batch_size=1, image_size=32)
    images, labels = all_examples(dataset)
    assert len(labels) == 4  # 6 files, 2 skipped
    assert [label_of_image(image) for image in images] == list(labels)


@pytest.mark.slow
def test_skip_corrupt_warns_with_the_file_and_a_count(tmp_path):
    write_image_folder(tmp_path, split="train", per_class=1)
    (tmp_path / "train" / "n01" / "n01_0.JPEG").write_text("garbage")
    code = ("from ghostnet_tf.data import DataSource, make_dataset\n"
            f"ds, _ = make_dataset(DataSource('folder', {str(tmp_path)!r}, skip_corrupt=True), "
            "'train', batch_size=1, image_size=32)\nprint(sum(1 for _ in ds))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                         check=True)
    assert out.stdout.strip().splitlines()[-1] == "2"
    assert "skipped corrupt image 1 so far:" in out.stderr and "n01_0.JPEG" in out.stderr


def test_empty_class_folder(tmp_path):
    write_image_folder(tmp_path, split="train", per_class=1)
    (tmp_path / "train" / "n04").mkdir()
    with pytest.raises(ValueError, match="n04 has no images"):
        make_dataset(DataSource("folder", tmp_path), "train")


def test_labels_file_that_does_not_match(tmp_path):
    write_image_folder(tmp_path, split="train", per_class=1)
    val = tmp_path / "val"
    val.mkdir()
    for i in range(3):
        (val / f"v{i}.JPEG").write_bytes(jpeg_bytes(class_image(0)))
    (tmp_path / "short.txt").write_text("n01\nn02\n")
    with pytest.raises(ValueError, match="2 labels but .* 3 images"):
        make_dataset(DataSource("folder", tmp_path, labels_file=tmp_path / "short.txt"), "test")
    (tmp_path / "names.txt").write_text("n01\nn09\nn02\n")
    with pytest.raises(ValueError, match="line 2: label 'n09'"):
        make_dataset(DataSource("folder", tmp_path, labels_file=tmp_path / "names.txt"), "test")
    (tmp_path / "pairs.txt").write_text("v0.JPEG n01\nv1.JPEG n02\nv7.JPEG n03\n")
    with pytest.raises(ValueError, match="does not match the images"):
        make_dataset(DataSource("folder", tmp_path, labels_file=tmp_path / "pairs.txt"), "test")
    with pytest.raises(ValueError, match="labels_file"):
        make_dataset(DataSource("folder", tmp_path), "test")


def test_truncated_archives_and_idx_files(tmp_path):
    path, _ = write_cifar(tmp_path, "cifar10")
    data = open(path, "rb").read()
    truncated = tmp_path / "cut" / "cifar-10-python.tar.gz"
    truncated.parent.mkdir()
    truncated.write_bytes(data[: len(data) // 2])
    with pytest.raises(ValueError, match="truncated"):
        load_arrays("cifar10", "train", truncated)
    idx_dir = tmp_path / "idx"
    idx_dir.mkdir()
    write_idx(idx_dir, split="test")
    import gzip
    image_file = idx_dir / "t10k-images-idx3-ubyte.gz"
    raw = gzip.decompress(image_file.read_bytes())
    image_file.write_bytes(gzip.compress(raw[:-100]))
    with pytest.raises(ValueError, match="t10k-images-idx3-ubyte.gz declares shape"):
        load_arrays("fashion_mnist", "test", idx_dir)


def test_missing_paths_and_unknown_names(tmp_path):
    with pytest.raises(ValueError, match="`data_dir` .* does not exist"):
        make_dataset(DataSource("folder", tmp_path / "nowhere"), "train")
    with pytest.raises(ValueError, match="`name` 'cifar11' is not a known dataset"):
        make_dataset("cifar11", "train")
    with pytest.raises(ValueError, match="is an unknown TFDS dataset"):
        make_dataset(DataSource("tfds:no_such_dataset_here", tmp_path), "train")
    with pytest.raises(ValueError, match="split"):
        make_dataset("cifar10", "validation")
    with pytest.raises(FileNotFoundError, match="TFRecord"):
        make_dataset(DataSource("folder", tmp_path), "train")


def test_a_data_source_checks_its_fields_once_and_overrides_the_models_transform(tmp_path):
    from ghostnet_tf.checks import ArgumentError
    from ghostnet_tf.data.eval_transform import EvalTransform

    source = DataSource("folder", tmp_path, crop_pct=0.95)
    assert source.data_dir == str(tmp_path) and DataSource.of(source) is source
    assert DataSource.of("cifar10") == DataSource("cifar10")
    assert source.eval_transform(EvalTransform("bicubic", 0.875)) == \
        EvalTransform("bicubic", 0.95)
    for field, value in (("crop_pct", 1.5), ("label_offset", 2), ("interpolation", "nearest"),
                         ("crop_pct", 0)):
        with pytest.raises(ArgumentError, match=f"`{field}` must"):
            DataSource("folder", tmp_path, **{field: value})


def test_the_numpy_training_stream_is_a_function_of_the_step():
    from ghostnet_tf.data.batches import TrainingStream

    images = np.random.default_rng(0).uniform(0, 255, (50, 8, 8, 1)).astype("float32")
    labels = np.arange(50) % 5

    def batches(start, steps_per_epoch, epochs):
        stream = TrainingStream(images, labels, 8, seed=3, start_step=start,
                                steps_per_epoch=steps_per_epoch)
        out = []
        for _ in range(epochs):  # as fit reads it: each epoch from index 0
            out += [stream[index] for index in range(len(stream))]
            stream.on_epoch_end()
        return out

    whole = batches(0, 4, 4)  # 16 steps: 6 batches a pass, so almost three passes
    resumed = batches(6, 2, 1) + batches(8, 4, 2)  # the rest of epoch 2, then epochs 3-4
    assert len(resumed) == 10
    for (x, y), (x_whole, y_whole) in zip(resumed, whole[6:]):
        np.testing.assert_array_equal(x, x_whole)
        np.testing.assert_array_equal(y, y_whole)
    # A pass draws 48 of the 50 examples without repeats (labels: ten of each class).
    first_pass = np.concatenate([y for _, y in whole[:6]])
    counts = np.bincount(first_pass)
    assert first_pass.size == 48 and counts.min() >= 8 and counts.max() <= 10
    assert not np.array_equal(whole[0][0], whole[6][0])
    other = TrainingStream(images, labels, 8, seed=4, start_step=0, steps_per_epoch=4)[0]
    assert not np.array_equal(other[1], whole[0][1])


def test_array_shape_resizes_small_images_and_gives_grayscale_as_rgb(tmp_path):
    from ghostnet_tf.checks import ArgumentError

    gray, labels = write_idx(tmp_path, count=4, split="test")
    dataset, info = make_dataset(DataSource("fashion_mnist", tmp_path), "test", batch_size=4,
                                 array_shape=(96, 96, 3))
    batch, read_labels = next(iter(dataset))
    assert info.image_shape == (96, 96, 3) and batch.shape == (4, 96, 96, 3)
    expected = tf.image.resize(gray[..., None].astype("float32"), (96, 96), method="bilinear")
    np.testing.assert_allclose(batch.numpy(), np.repeat(expected.numpy(), 3, axis=-1),
                               atol=1e-4)
    np.testing.assert_array_equal(read_labels.numpy(), labels)
    own, own_info = make_dataset(DataSource("fashion_mnist", tmp_path), "test", batch_size=4,
                                 array_shape=(28, 28, None))
    assert own_info.image_shape == (28, 28, 1)
    np.testing.assert_array_equal(next(iter(own))[0].numpy()[..., 0], gray)
    with pytest.raises(ArgumentError, match="`array_shape` must be .* 1 or 3 channels"):
        make_dataset(DataSource("fashion_mnist", tmp_path), "test", array_shape=(96, 96, 2))
