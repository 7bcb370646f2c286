"""What the command-line tools share: a quiet TensorFlow start, the flags that several tools
take (defined once here), and one way to show an error.

Library errors name Python arguments (`ghostnet_tf.checks.ArgumentError`); `run` shows them
under the tool's flag for that argument.
"""
import argparse
import contextlib
import importlib.util
import os
import re
import sys
import tempfile

# Flags for the library's argument names, common to the tools; a tool adds its own.
FLAGS = {
    "model": "--model", "arch": "--arch", "classes": "--classes", "labels": "--labels",
    "data_dir": "--data-dir", "labels_file": "--labels-file", "name": "--dataset",
    "split": "--split", "batch_size": "--batch-size", "image": "IMAGE",
    "skip_corrupt": "--skip-corrupt", "label_offset": "--label-offset", "source": "--dataset",
    "crop_pct": "--crop-pct", "interpolation": "--interpolation",
    "resize_arrays": "--resize-arrays",
}
# What TensorFlow's C++ libraries print at import before their logging is set up (absl's
# notice and info lines such as "I0000 00:00:... port.cc:153] oneDNN custom operations are
# on"), which TF_CPP_MIN_LOG_LEVEL does not reach.
_STARTUP_NOISE = re.compile(r"^(I\d{4} |WARNING: All log messages before absl::InitializeLog)")
# What the TFLite converter and LiteRT print as information (the quantizer's settings, the
# XNNPACK delegate's creation): held back; their warnings and errors are shown.
_CONVERTER_NOISE = re.compile(_STARTUP_NOISE.pattern[:-1] + r"|fully_quantize: |INFO: Created "
                              r"TensorFlow Lite XNNPACK delegate)")


# The package each Keras backend needs, and how to install it.
_BACKEND_PACKAGES = {"tensorflow": ("tensorflow", "pip install -e ."),
                     "jax": ("jax", 'pip install -e ".[jax]" (or pip install jax)'),
                     "torch": ("torch", 'pip install -e ".[torch]"')}


def start_backend(prog):
    """Before Keras is imported: check that the backend KERAS_BACKEND names is installed
    (else a one-line error, exit status 2), and import TensorFlow without its C++ log,
    unless the user set TF_CPP_MIN_LOG_LEVEL (then nothing is hidden; 0 shows everything).
    The log is start-up information and, on a machine without GPUs, a "failed call to
    cuInit" error that is not one; TensorFlow's real failures reach Python as exceptions.
    The JAX backend's tools read data with TensorFlow too, so it is quieted there as well.
    Lines printed during the import that are not absl's start-up notices are shown."""
    backend = os.environ.get("KERAS_BACKEND", "tensorflow")
    package, install = _BACKEND_PACKAGES.get(backend, (backend, f"pip install {backend}"))
    if "keras" not in sys.modules and importlib.util.find_spec(package) is None:
        print(f"{prog}: error: KERAS_BACKEND={backend} needs the {package} package, which is "
              f"not installed: {install}", file=sys.stderr)
        raise SystemExit(2)
    if "TF_CPP_MIN_LOG_LEVEL" in os.environ or "tensorflow" in sys.modules or \
            importlib.util.find_spec("tensorflow") is None:
        return
    os.environ["TF_CPP_MIN_LOG_LEVEL"] = "3"
    with tempfile.TemporaryFile(mode="w+") as captured:
        try:
            with _stderr_to(captured):
                import tensorflow  # noqa: F401
        finally:
            captured.seek(0)
            for line in captured:
                if not _STARTUP_NOISE.match(line):
                    sys.stderr.write(line)


@contextlib.contextmanager
def progress_display(prog, noise=_CONVERTER_NOISE):
    """Within: `progress(text, done, total)` (what it yields) shows a tqdm bar on a terminal,
    or one line per step in a log. What C++ libraries print meanwhile is held back and shown
    at the end, without the lines that match `noise` (information, not warnings), so that
    it does not break the bar."""
    from tqdm import tqdm

    terminal = os.fdopen(os.dup(2), "w")  # the real stderr, for the bar
    bar = None

    def progress(text, done, total):
        nonlocal bar
        if not terminal.isatty():
            print(f"{prog}: [{done + 1}/{total}] {text}", file=terminal, flush=True)
            return
        if bar is None:
            bar = tqdm(total=total, file=terminal, unit="step", leave=False,
                       bar_format="{desc} {n_fmt}/{total_fmt} [{elapsed}]")
        bar.set_description_str(f"{prog}: {text}")
        bar.n = done
        bar.refresh()

    with tempfile.TemporaryFile(mode="w+") as captured:
        try:
            with _stderr_to(captured):
                yield progress
        finally:
            if bar is not None:
                bar.close()
            terminal.close()
            captured.seek(0)
            for line in captured:
                if not noise.match(line):
                    sys.stderr.write(line)


@contextlib.contextmanager
def _stderr_to(file):
    """Send file descriptor 2 (where C++ libraries write) to `file` for a while."""
    sys.stderr.flush()
    saved = os.dup(2)
    os.dup2(file.fileno(), 2)
    try:
        yield
    finally:
        sys.stderr.flush()
        os.dup2(saved, 2)
        os.close(saved)


def run(prog, function, args, flags=None):
    """`function(args)`, or a one-line error naming the flag (or the path, for an error of
    the operating system) and exit status 2."""
    from ghostnet_tf.checks import ArgumentError

    names = {**FLAGS, **(flags or {})}
    try:
        return function(args)
    except ArgumentError as error:
        message = error.message(names.get(error.argument, f"`{error.argument}`"))
    except ValueError as error:
        message = str(error)
    except OSError as error:  # a full disk, a folder where a file should be, no permission
        message = (f"{error.filename}: {error.strerror}" if error.filename and error.strerror
                   else str(error))
    print(f"{prog}: error: {message}", file=sys.stderr)
    return 2


# ---------------------------------------------------------------------------- flag types
def positive_int(text):
    """argparse type: an integer >= 1."""
    return _int_at_least(text, 1, "a positive integer")


def non_negative_int(text):
    """argparse type: an integer >= 0."""
    return _int_at_least(text, 0, "0 or more")


def _int_at_least(text, low, kind):
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"must be {kind}, got {text!r}") from None
    if value < low:
        raise argparse.ArgumentTypeError(f"must be {kind}, got {value}")
    return value


def _label_offset(text):
    if text == "auto":
        return text
    if text in ("0", "1"):
        return int(text)
    raise argparse.ArgumentTypeError(f"must be auto, 0 or 1, got {text!r}")


def fraction(text):
    """argparse type: a number in (0, 1]."""
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"must be a number in (0, 1], got {text!r}") from None
    if not 0 < value <= 1:
        raise argparse.ArgumentTypeError(f"must be in (0, 1], got {value}")
    return value


# ---------------------------------------------------------------------------- shared flags
def add_model_arguments(parser, kinds="a .keras file, a .weights.h5 file with --arch, a "
                                      "SavedModel folder, a .tflite or an .onnx file"):
    parser.add_argument("--model", required=True, help=kinds)
    parser.add_argument("--arch", metavar="NAME",
                        help="registry name of a .weights.h5 file's model (e.g. "
                             "ghost_resnet56; `ghostnet-profile --list` lists them)")


def add_dataset_arguments(parser, required, help_suffix=""):
    parser.add_argument("--dataset", required=required,
                        help="cifar10, cifar100, mnist, fashion_mnist, folder/imagenet, "
                             "tfds:NAME" + help_suffix)
    parser.add_argument("--data-dir", help="where the dataset's files are")
    parser.add_argument("--labels-file", help="labels of a flat validation folder")
    parser.add_argument("--label-offset", default="auto", type=_label_offset,
                        help="TFRecord shards: subtract this from the stored labels: auto "
                             "(default: 1, ImageNet's build scripts, unless a label is 0), 0 "
                             "or 1")
    parser.add_argument("--skip-corrupt", action="store_true",
                        help="skip corrupt image files with a warning naming each (default: "
                             "stop at the first, naming it)")
    parser.add_argument("--resize-arrays", action="store_true",
                        help="CIFAR, MNIST: resize the images to the model's input and give "
                             "grayscale as RGB (a model trained with data.image_size)")


def data_source(args):
    """The `DataSource` of the dataset flags (`add_dataset_arguments`, and the evaluation
    transform's where the tool has them)."""
    from ghostnet_tf.data.source import DataSource

    return DataSource(args.dataset, args.data_dir, args.labels_file, args.skip_corrupt,
                      args.label_offset, getattr(args, "interpolation", None),
                      getattr(args, "crop_pct", None),
                      resize_arrays=args.resize_arrays)


def add_eval_transform_arguments(parser):
    from ghostnet_tf.checks import INTERPOLATIONS

    parser.add_argument("--crop-pct", type=fraction,
                        help="image files: resize the short side to size / crop-pct, then "
                             "center-crop (default: the model's, 0.875 for ImageNet models)")
    parser.add_argument("--interpolation", choices=INTERPOLATIONS,
                        help="image files: the resize's interpolation (default: the model's)")

