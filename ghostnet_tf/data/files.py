"""Readers of the standard dataset files, in numpy only (no TensorFlow).

- CIFAR-10 / CIFAR-100: `cifar-10-python.tar.gz` / `cifar-100-python.tar.gz` or their
  extracted folders, wherever the user or Keras keeps them;
- MNIST and Fashion-MNIST: the gzip (or raw) IDX files;
- image folders: `<root>/<class>/<image>`, and ImageNet's flat `val/` folder with a labels file;
- TFRecord shards: listing only (their reading is TensorFlow's).

Errors name the file and say what was expected.
"""
import dataclasses
import gzip
import os
import pickle
import tarfile

import numpy as np

from ghostnet_tf.checks import ArgumentError

CIFAR10_CLASSES = ("airplane", "automobile", "bird", "cat", "deer", "dog", "frog", "horse",
                   "ship", "truck")
FASHION_MNIST_CLASSES = ("T-shirt/top", "Trouser", "Pullover", "Dress", "Coat", "Sandal",
                         "Shirt", "Sneaker", "Bag", "Ankle boot")
MNIST_CLASSES = tuple(str(digit) for digit in range(10))
IMAGE_EXTENSIONS = (".jpeg", ".jpg", ".png", ".bmp", ".gif")
SPLITS = ("train", "test")


@dataclasses.dataclass
class DatasetInfo:
    name: str
    split: str
    num_classes: int
    class_names: tuple
    num_examples: int
    image_shape: tuple  # (height, width, channels); None sizes for image files


# ---------------------------------------------------------------------------- CIFAR
@dataclasses.dataclass(frozen=True)
class _CifarLayout:
    folder: str
    archive: str
    keras_archive: str
    train_files: tuple
    test_files: tuple
    label_key: bytes


_CIFAR = {
    "cifar10": _CifarLayout("cifar-10-batches-py", "cifar-10-python.tar.gz",
                            "cifar-10-batches-py.tar.gz",
                            tuple(f"data_batch_{i}" for i in range(1, 6)), ("test_batch",),
                            b"labels"),
    "cifar100": _CifarLayout("cifar-100-python", "cifar-100-python.tar.gz",
                             "cifar-100-python.tar.gz", ("train",), ("test",), b"fine_labels"),
}
KERAS_DATASETS_DIR = os.path.join(os.path.expanduser("~"), ".keras", "datasets")


def _check_split(split):
    if split not in SPLITS:
        raise ValueError(f"`split` must be one of {SPLITS}, got {split!r}.")


def check_data_dir(data_dir):
    """Raise ArgumentError when the path the user gave does not exist: a path the user
    gives is the only place looked, never replaced by a default one."""
    if data_dir is not None and not os.path.exists(os.fspath(data_dir)):
        raise ArgumentError("data_dir", f"{os.fspath(data_dir)} does not exist.")


def cifar_candidates(name, data_dir=None):
    """Where CIFAR files are looked for, in order: `data_dir` itself (the archive or the
    extracted folder) and inside it when it is given; else Keras' cache (~/.keras/datasets)."""
    layout = _CIFAR[name]
    places = []
    for root in [os.fspath(data_dir) if data_dir is not None else KERAS_DATASETS_DIR]:
        places += [root, os.path.join(root, layout.folder), os.path.join(root, layout.archive),
                   os.path.join(root, layout.keras_archive),
                   os.path.join(root, layout.folder + "_extracted", layout.folder)]
    return places


def _unpickle(data, source):
    try:
        return pickle.loads(data, encoding="bytes")
    except Exception as error:  # pickle raises many kinds on damaged data
        raise ValueError(f"{source} is not a CIFAR batch file (python pickle): {error}") from error


def _read_cifar_batches(path, layout, files):
    """{member name: unpickled dict} from an extracted folder or a .tar.gz archive."""
    batches = {}
    if os.path.isdir(path):
        for file in files:
            file_path = os.path.join(path, file)
            if not os.path.isfile(file_path):
                raise ValueError(f"CIFAR folder {path} lacks {file}: expected the extracted "
                                 f"{layout.archive} ({', '.join(files)}).")
            with open(file_path, "rb") as handle:
                batches[file] = _unpickle(handle.read(), file_path)
        return batches
    try:
        with tarfile.open(path, "r:gz") as archive:
            for file in files:
                member = f"{layout.folder}/{file}"
                try:
                    handle = archive.extractfile(member)
                except KeyError:
                    raise ValueError(f"CIFAR archive {path} has no {member}: expected "
                                     f"{layout.archive} from the CIFAR website.") from None
                batches[file] = _unpickle(handle.read(), f"{path}:{member}")
    except (tarfile.TarError, EOFError, OSError) as error:
        raise ValueError(f"CIFAR archive {path} is truncated or not a .tar.gz "
                         f"({error}): download {layout.archive} again.") from error
    return batches


def load_cifar(name="cifar10", split="train", data_dir=None):
    """CIFAR images (N, 32, 32, 3) uint8 and labels (N,) int64, and a `DatasetInfo`."""
    if name not in _CIFAR:
        raise ValueError(f"`name` must be one of {tuple(_CIFAR)}, got {name!r}.")
    _check_split(split)
    layout = _CIFAR[name]
    check_data_dir(data_dir)
    path = find_cifar(name, data_dir)
    if path is None:
        raise FileNotFoundError(missing_files_message(name, data_dir))
    files = layout.train_files if split == "train" else layout.test_files
    batches = _read_cifar_batches(path, layout, files)
    images, labels = [], []
    for file, batch in batches.items():
        if b"data" not in batch or layout.label_key not in batch:
            raise ValueError(f"{path}/{file} has no {layout.label_key.decode()!r}/'data' "
                             f"entries: is it a {name} file?")
        data = np.asarray(batch[b"data"], dtype=np.uint8)
        if data.ndim != 2 or data.shape[1] != 3072 or len(batch[layout.label_key]) != len(data):
            raise ValueError(f"{path}/{file}: expected N x 3072 pixels and N labels, got "
                             f"{data.shape} and {len(batch[layout.label_key])} labels.")
        images.append(data.reshape(-1, 3, 32, 32).transpose(0, 2, 3, 1))
        labels.append(np.asarray(batch[layout.label_key], dtype=np.int64))
    class_names = CIFAR10_CLASSES if name == "cifar10" else _cifar100_class_names(path, layout)
    images, labels = np.concatenate(images), np.concatenate(labels)
    info = DatasetInfo(name, split, len(class_names), class_names, len(images), (32, 32, 3))
    return images, labels, info


def _cifar100_class_names(path, layout):
    meta = _read_cifar_batches(path, layout, ("meta",))["meta"]
    return tuple(name.decode() for name in meta[b"fine_label_names"])


def find_cifar(name, data_dir=None):
    """The first existing CIFAR archive or folder among `cifar_candidates`, else None."""
    layout = _CIFAR[name]
    for place in cifar_candidates(name, data_dir):
        if os.path.isdir(place) and os.path.exists(os.path.join(place, layout.test_files[0])):
            return place
        if os.path.isfile(place) and place.endswith(".tar.gz"):
            return place
    return None


# ---------------------------------------------------------------------------- IDX (MNIST)
_IDX_FILES = {
    "train": ("train-images-idx3-ubyte", "train-labels-idx1-ubyte"),
    "test": ("t10k-images-idx3-ubyte", "t10k-labels-idx1-ubyte"),
}
FASHION_MNIST_DIRS = ("/usr/share/datasets/fashion-mnist",
                      os.path.join(KERAS_DATASETS_DIR, "fashion-mnist"))


def read_idx(path):
    """An IDX file (gzip or raw) as a uint8 numpy array of its declared shape."""
    opener = gzip.open if path.endswith(".gz") else open
    try:
        with opener(path, "rb") as handle:
            data = handle.read()
    except (OSError, EOFError) as error:
        raise ValueError(f"IDX file {path} is truncated or not gzip: {error}") from error
    if len(data) < 4 or data[0] != 0 or data[1] != 0 or data[2] != 0x08:
        raise ValueError(f"{path} is not an IDX file of unsigned bytes (bad magic number).")
    dims = data[3]
    header = 4 + 4 * dims
    shape = tuple(int.from_bytes(data[4 + 4 * i: 8 + 4 * i], "big") for i in range(dims))
    if len(data) != header + int(np.prod(shape)):
        raise ValueError(f"IDX file {path} declares shape {shape} "
                         f"({header + int(np.prod(shape))} bytes) but has {len(data)} bytes: "
                         "it is truncated or damaged.")
    return np.frombuffer(data, dtype=np.uint8, offset=header).reshape(shape)


def _idx_path(directory, stem):
    for candidate in (stem + ".gz", stem):
        path = os.path.join(directory, candidate)
        if os.path.isfile(path):
            return path
    return None


def find_idx_dir(name, data_dir=None):
    """The folder holding the IDX files of `name` ("mnist" or "fashion_mnist"): `data_dir`
    when it is given, else the usual places; None when they are not there."""
    if data_dir is not None:
        places = [os.fspath(data_dir)]
    elif name == "fashion_mnist":
        places = list(FASHION_MNIST_DIRS)
    else:
        places = [os.path.join(KERAS_DATASETS_DIR, "mnist")]
    for place in places:
        if _idx_path(place, _IDX_FILES["test"][0]):
            return place
    return None


def load_idx_dataset(name="fashion_mnist", split="train", data_dir=None):
    """MNIST or Fashion-MNIST images (N, 28, 28, 1) uint8 and labels (N,) int64."""
    if name not in ("mnist", "fashion_mnist"):
        raise ValueError(f"`name` must be 'mnist' or 'fashion_mnist', got {name!r}.")
    _check_split(split)
    check_data_dir(data_dir)
    directory = find_idx_dir(name, data_dir)
    if directory is None:
        raise FileNotFoundError(missing_files_message(name, data_dir))
    image_stem, label_stem = _IDX_FILES[split]
    image_path, label_path = _idx_path(directory, image_stem), _idx_path(directory, label_stem)
    for stem, path in ((image_stem, image_path), (label_stem, label_path)):
        if path is None:
            raise FileNotFoundError(f"{directory} has no {stem}.gz (or {stem}).")
    images, labels = read_idx(image_path), read_idx(label_path)
    if images.ndim != 3 or labels.ndim != 1 or len(images) != len(labels):
        raise ValueError(f"{image_path} ({images.shape}) and {label_path} ({labels.shape}) do "
                         "not hold the same number of images and labels.")
    class_names = FASHION_MNIST_CLASSES if name == "fashion_mnist" else MNIST_CLASSES
    info = DatasetInfo(name, split, 10, class_names, len(images), (28, 28, 1))
    return images[..., None], labels.astype(np.int64), info


ARRAY_DATASETS = {"cifar10": load_cifar, "cifar100": load_cifar,
                  "mnist": load_idx_dataset, "fashion_mnist": load_idx_dataset}
FOLDER_DATASETS = ("folder", "imagenet")  # class folders, a flat val/ folder, TFRecords
TFDS_PREFIX = "tfds:"


def is_dataset_name(name):
    """Whether `make_dataset` knows the dataset `name`."""
    return isinstance(name, str) and (name in ARRAY_DATASETS or name in FOLDER_DATASETS
                                      or name.startswith(TFDS_PREFIX))


def load_arrays(name, split="train", data_dir=None):
    """A small dataset as numpy arrays (images uint8 NHWC, labels int64) and its info.

    `name` is one of "cifar10", "cifar100", "mnist", "fashion_mnist"; `data_dir` the archive,
    the extracted folder or the folder that holds them (default: the usual places).
    No TensorFlow: this is how the JAX backend gets its data.
    """
    if name not in ARRAY_DATASETS:
        raise ValueError(f"Unknown dataset {name!r}; numpy arrays exist for "
                         f"{', '.join(ARRAY_DATASETS)}.")
    return ARRAY_DATASETS[name](name, split, data_dir)


def missing_files_message(name, data_dir=None):
    """Which files to put where, for a dataset that was not found."""
    if data_dir is not None:
        return _missing_in(name, data_dir)
    if name in _CIFAR:
        layout = _CIFAR[name]
        return (f"{name} not found. Put {layout.archive} (from "
                "https://www.cs.toronto.edu/~kriz/cifar.html) or its extracted folder "
                f"{layout.folder}/ in {KERAS_DATASETS_DIR}, or pass its path as the data "
                "directory; or run online to get it through TFDS.")
    stems = ", ".join(f"{stem}.gz" for pair in _IDX_FILES.values() for stem in pair)
    hint = (" On Debian: apt-get install dataset-fashion-mnist (puts them in "
            "/usr/share/datasets/fashion-mnist)." if name == "fashion_mnist" else "")
    return (f"{name} not found. Put the IDX files {stems} in one folder and pass it as the "
            f"data directory.{hint}")


def _missing_in(name, data_dir):
    """What a `data_dir` the user gave lacks."""
    if name in _CIFAR:
        layout = _CIFAR[name]
        expected = f"{layout.archive} or its extracted folder {layout.folder}/"
    else:
        expected = "the IDX files " + ", ".join(f"{stem}.gz" for pair in _IDX_FILES.values()
                                                for stem in pair)
    return f"{name} not found in {os.fspath(data_dir)} (the data_dir given): expected {expected}."


# ---------------------------------------------------------------------------- image folders
def _is_image(file_name):
    return file_name.lower().endswith(IMAGE_EXTENSIONS)


def list_image_folder(root, class_names=None):
    """(paths, labels, class_names) of `root/<class>/<image>`; classes in sorted order.

    `class_names` fixes the class order (e.g. the training split's, for a validation split).
    """
    root = os.fspath(root)
    if not os.path.isdir(root):
        raise FileNotFoundError(f"Image folder {root} does not exist.")
    found = sorted(entry.name for entry in os.scandir(root) if entry.is_dir())
    if not found:
        raise ValueError(f"Image folder {root} has no class subfolders: expected "
                         f"{root}/<class>/<image>.JPEG.")
    if class_names is None and len(found) < 2:
        raise ValueError(f"Image folder {root} has one class folder ({found[0]}): a "
                         "classifier needs two classes or more.")
    class_names = tuple(class_names) if class_names is not None else tuple(found)
    unknown = sorted(set(found) - set(class_names))
    if unknown:
        raise ValueError(f"Image folder {root} has classes that the label set lacks: "
                         f"{unknown[:5]}{' ...' if len(unknown) > 5 else ''}.")
    index = {name: i for i, name in enumerate(class_names)}
    paths, labels = [], []
    for name in found:
        folder = os.path.join(root, name)
        images = sorted(f for f in os.listdir(folder) if _is_image(f))
        if not images:
            raise ValueError(f"Class folder {folder} has no images ({', '.join(IMAGE_EXTENSIONS)}).")
        paths += [os.path.join(folder, image) for image in images]
        labels += [index[name]] * len(images)
    return paths, np.asarray(labels, dtype=np.int64), class_names


def list_flat_folder(root, labels_file, class_names):
    """(paths, labels) of a flat folder of images (ImageNet's `val/`) and its labels file.

    The labels file has one line per image, either "FILE LABEL" or just "LABEL" in the
    sorted order of the file names; LABEL is a class name (e.g. the WordNet id n01440764) or
    an integer index into `class_names`.
    """
    root, labels_file = os.fspath(root), os.fspath(labels_file)
    if not os.path.isfile(labels_file):
        raise FileNotFoundError(f"Labels file {labels_file} does not exist.")
    files = sorted(f for f in os.listdir(root) if _is_image(f))
    if not files:
        raise ValueError(f"Folder {root} has no images.")
    with open(labels_file) as handle:
        lines = [line.split() for line in handle if line.strip()]
    index = {name: i for i, name in enumerate(class_names)}

    def label_of(text, line_number):
        if text in index:
            return index[text]
        if text.isdigit() and int(text) < len(class_names):
            return int(text)
        raise ValueError(f"{labels_file}, line {line_number}: label {text!r} is neither a "
                         f"class name nor an index below {len(class_names)}.")

    if all(len(fields) == 1 for fields in lines):
        if len(lines) != len(files):
            raise ValueError(f"{labels_file} has {len(lines)} labels but {root} has "
                             f"{len(files)} images: they must match one to one.")
        labels = [label_of(fields[0], n) for n, fields in enumerate(lines, 1)]
    else:
        by_file = {}
        for n, fields in enumerate(lines, 1):
            if len(fields) != 2:
                raise ValueError(f"{labels_file}, line {n}: expected 'FILE LABEL', got "
                                 f"{' '.join(fields)!r}.")
            by_file[os.path.basename(fields[0])] = label_of(fields[1], n)
        missing = [f for f in files if f not in by_file]
        extra = sorted(set(by_file) - set(files))
        if missing or extra:
            raise ValueError(f"{labels_file} does not match the images of {root}: "
                             f"{len(missing)} images without a label (e.g. {missing[:3]}), "
                             f"{len(extra)} labels without an image (e.g. {extra[:3]}).")
        labels = [by_file[f] for f in files]
    return [os.path.join(root, f) for f in files], np.asarray(labels, dtype=np.int64)


def list_tfrecord_shards(pattern_or_dir, split):
    """TFRecord shard files: `<dir>/<split>-*` (ImageNet's train-00000-of-01024 naming) or a
    glob pattern."""
    import glob

    pattern = os.fspath(pattern_or_dir)
    if os.path.isdir(pattern):
        prefix = "validation" if split == "test" else split
        shards = sorted(glob.glob(os.path.join(pattern, f"{prefix}-*")))
        if not shards and split == "test":
            shards = sorted(glob.glob(os.path.join(pattern, "val-*")))
    else:
        shards = sorted(glob.glob(pattern))
    if not shards:
        raise FileNotFoundError(f"No TFRecord shards for split {split!r} at {pattern} "
                                "(expected train-*-of-* and validation-*-of-* files).")
    return shards
