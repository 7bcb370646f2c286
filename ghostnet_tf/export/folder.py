"""Writing an export folder: every format of the table, each checked against the Keras
model, and `export.json` with what was written; an earlier export of the same model is kept
and merged into, and the folder is swapped in whole.

`export_model_file` does it for a model file, with the check and calibration images of a
dataset prepared as the model expects.
"""
import os
import shutil

import numpy as np

from ghostnet_tf.atomic import read_json, replace_directory, write_file, write_json
from ghostnet_tf.checks import ArgumentError
from ghostnet_tf.export.common import (EXPORT_REPORT, LABELS_FILE, Conversion, ExportOptions,
                                       check_classifier, inference_copy, labels_text)
from ghostnet_tf.export.formats import (FLOAT_AGREEMENT_GOAL, FORMAT_TABLE, FORMATS,
                                        INT8_AGREEMENT_GOAL, by_target, check_formats,
                                        runs_here)
from ghostnet_tf.export_rewrites import check_rewrites


def export(model, output_dir, formats=FORMATS, class_names=None, calibration_images=None,
           check_images=None, options=ExportOptions(), replace=False, progress=None,
           eval_transform=None):
    """Export `model` to `output_dir` in each of `formats` and check each against it.

    Writes the file of each of `formats` (`ghostnet_tf.export.FORMAT_TABLE`: `saved_model/`,
    `model_<kind>.tflite` with RGB input and LiteRT metadata with the labels, `model.onnx`,
    ...), converted with `options` (an `ExportOptions`), `labels.txt`, a `<file>.check.json`
    beside each export and `export.json` with all of them. The export is built in a staging folder beside `output_dir` and swapped in whole:
    a failure or a kill leaves the folder as it was.

    Into an earlier export of the same model (the same weights), only the files of
    `formats` are replaced: the other formats' files and everything else in the folder (the
    reports `eval.py` writes there) stay, and `export.json` lists them all. An earlier
    export of another model is refused unless `replace`: then that export's own files are
    removed, and files it did not write stay. A folder that holds other files (no
    export.json) is refused.

    `progress(text, done, total)`, when given, is called as each step begins (converting a
    format, checking a file). `eval_transform` (an `EvalTransform`) is how the model's images
    are prepared, for the formats that carry their preprocessing (keras_hub; default: the
    registry's for the model).

    Returns the report (dict) written to `export.json`.
    """
    check_formats(formats)
    check_rewrites(options.rewrites)
    check_classifier(model)
    calibrated = [kind for kind in formats if FORMAT_TABLE[kind].calibrated]
    if calibrated and (calibration_images is None or len(calibration_images) == 0):
        raise ArgumentError("calibration_images", f"are needed: formats include "
                                                  f"{calibrated[0]}, which is calibrated on "
                                                  "them.")
    output_dir = os.fspath(output_dir)
    check_output_dir(output_dir)
    earlier = _EarlierExport.of(output_dir, model, replace)
    checked = check_images is not None and len(check_images) > 0
    step = _Steps(progress, 1 + checked * len(formats) + sum(
        target.steps(rows) for target, rows in by_target(formats)))
    step("preparing the inference graph")
    model = inference_copy(model)
    conversion = Conversion(class_names, calibration_images, options, eval_transform)

    def build(staging):
        os.makedirs(staging)
        report = _write_exports(model, staging, output_dir, formats, check_images, conversion,
                                earlier.kept_entries(formats), earlier.fingerprint, step)
        earlier.carry_into(staging)
        return report
    return replace_directory(build, output_dir)


class _Steps:
    """Counts an export's steps for its `progress` callback (none: nothing is said)."""

    def __init__(self, progress, total):
        self.progress, self.total, self.done = progress, total, 0

    def __call__(self, text):
        if self.progress is not None:
            self.progress(text, self.done, self.total)
        self.done += 1


def weights_sha256(model):
    """A digest of `model`'s weights: tells whether two exports are of the same model."""
    import hashlib

    import keras

    digest = hashlib.sha256()
    for weight in model.weights:
        digest.update(np.ascontiguousarray(keras.ops.convert_to_numpy(weight)).tobytes())
    return digest.hexdigest()


class _EarlierExport:
    """What an export into `output_dir` keeps of what is there: every file but those the new
    export writes, and, with `replace`, those the earlier export wrote."""

    def __init__(self, folder, report, merge, fingerprint):
        self.folder, self.report, self.merge = folder, report, merge
        self.fingerprint = fingerprint  # of the model now exported: `weights_sha256`

    @classmethod
    def of(cls, output_dir, model, replace):
        """The earlier export in `output_dir` (none when the folder is new or empty);
        ArgumentError("replace") when it is of another model and `replace` is not set."""
        fingerprint = weights_sha256(model)
        report = read_json(os.path.join(output_dir, EXPORT_REPORT))
        if not isinstance(report, dict):
            return cls(output_dir if os.path.isdir(output_dir) else None, {}, False,
                       fingerprint)
        same = report.get("model_sha256") == fingerprint
        if not same and not replace:
            whose = ("another model (its weights differ)" if "model_sha256" in report else
                     "a model this version cannot compare with, written by an earlier version")
            raise ArgumentError("replace", f"is needed: {output_dir} holds an export of "
                                           f"{whose}. Give a new output folder, or replace "
                                           "that export (its own files are removed, other "
                                           "files stay).")
        return cls(output_dir, report, same and not replace, fingerprint)

    def kept_entries(self, formats):
        """The report entries of the earlier export's formats that this one leaves."""
        if not self.merge:
            return {}
        kept = {}
        for kind, entry in self.report.get("exports", {}).items():
            name = os.path.basename(entry["path"])
            if kind not in formats and os.path.exists(os.path.join(self.folder, name)):
                kept[kind] = {**entry, "path": os.path.join(self.folder, name), "kept": True}
        return kept

    def _own_files(self):
        """The names of the files that the earlier export wrote."""
        names = {EXPORT_REPORT, LABELS_FILE}
        for entry in self.report.get("exports", {}).values():
            name = os.path.basename(entry["path"])
            names |= {name, f"{name}.check.json", f"{name}.ops.txt"}
        return names

    def carry_into(self, staging):
        """Hard-link (or copy) what is kept into the new export's staging folder."""
        if self.folder is None:
            return
        written = set(os.listdir(staging))
        dropped = set() if self.merge else self._own_files()
        for name in sorted(set(os.listdir(self.folder)) - written - dropped):
            source, target = os.path.join(self.folder, name), os.path.join(staging, name)
            if os.path.isdir(source):
                shutil.copytree(source, target, copy_function=_link_or_copy)
            else:
                _link_or_copy(source, target)


def _link_or_copy(source, target):
    try:
        os.link(source, target)
    except OSError:  # a file system without hard links
        shutil.copy2(source, target)


def check_output_dir(output_dir):
    """Refuse an output folder that is a file, or a folder of other things than an export."""
    if os.path.isfile(output_dir):
        raise ArgumentError("output_dir", f"{output_dir} is a file; give a folder to export "
                                          "into.")
    if os.path.isdir(output_dir) and os.listdir(output_dir) and \
            not os.path.isfile(os.path.join(output_dir, EXPORT_REPORT)):
        raise ArgumentError("output_dir", f"{output_dir} holds other files and no "
                                          f"{EXPORT_REPORT}: give a new or empty folder, or "
                                          "an earlier export to replace.")


def _write_exports(model, folder, output_dir, formats, check_images, conversion,
                   kept_entries, fingerprint, step):
    """Write every export of `model` into `folder`, whose contents will be moved to
    `output_dir` (the paths the report gives), and the report, which also lists
    `kept_entries`, those of an earlier export of the model (`fingerprint`) that stay."""
    import keras

    def keras_predict(images):
        return keras.ops.convert_to_numpy(model(images, training=False))

    # The model's name lets the loading layer find its registry entry (eval transform).
    report = {"model": model.name, "model_sha256": fingerprint,
              "input_shape": list(model.input_shape[1:]),
              "tflite_input_shape": list(model.input_shape[1:3]) + [3],
              "exports": dict(kept_entries)}
    if conversion.class_names is not None:
        write_file(os.path.join(folder, LABELS_FILE), labels_text(conversion.class_names))
    for target, rows in by_target(formats):
        written = target.write(model, folder, rows, conversion, step)
        for row in rows:
            entry = {"path": os.path.join(output_dir, row.file), **written[row.name]}
            if check_images is not None and len(check_images) and runs_here(target):
                step(f"checking {row.file} on {len(check_images)} images")
                predict = target.load(os.path.join(folder, row.file)).predict
                entry["check"] = compare(keras_predict, predict, check_images)
                goal = "meets_float_goal" if row.float else "meets_int8_goal"
                entry["check"][goal] = entry["check"]["top1_agreement"] >= (
                    FLOAT_AGREEMENT_GOAL if row.float else INT8_AGREEMENT_GOAL)
            write_json(os.path.join(folder, f"{row.file}.check.json"),
                       {"kind": row.name, **entry})
            report["exports"][row.name] = entry
    report["exports"] = {kind: report["exports"][kind] for kind in FORMAT_TABLE
                         if kind in report["exports"]}
    write_json(os.path.join(folder, EXPORT_REPORT), report)
    return report


def compare(reference, candidate, images, batch_size=64):
    """Top-1 agreement and largest probability difference of two predictors on `images`."""
    agree, largest = 0, 0.0
    for start in range(0, len(images), batch_size):
        batch = images[start:start + batch_size]
        expected, actual = np.asarray(reference(batch)), np.asarray(candidate(batch))
        agree += int((expected.argmax(axis=1) == actual.argmax(axis=1)).sum())
        largest = max(largest, float(np.abs(expected - actual).max()))
    return {"images": len(images), "top1_agreement": agree / len(images),
            "max_probability_difference": largest}


def balanced_images(batches, num_classes, count):
    """Up to `count` images from `batches` of (images, labels), every class represented:
    at most ceil(count / num_classes) of each class, in the order they come."""
    quota = -(-count // num_classes)
    taken = np.zeros(num_classes, dtype=np.int64)
    chosen = []
    for images, labels in batches:
        labels = np.asarray(labels)
        if labels.ndim == 2:
            labels = labels.argmax(axis=1)
        for image, label in zip(np.asarray(images), labels):
            if taken[label] < quota:
                taken[label] += 1
                chosen.append(image)
        if len(chosen) >= count or taken.min() >= quota:
            break
    return np.stack(chosen[:count]) if chosen else np.zeros((0,), np.float32)




def default_output_dir(model_path):
    """Where an export of the model file at `model_path` goes by default: beside it."""
    from ghostnet_tf.loading import model_stem
    return f"{model_stem(model_path)}_export"


def export_model_file(model, output_dir=None, formats=FORMATS, source=None, arch=None,
                      calibration_images=1000, check_images=1000, options=ExportOptions(),
                      replace=False, progress=None):
    """Export the model file `model` (`.keras`, or `.weights.h5` with `arch`) with `export`,
    checked on `check_images` test images of `source` (a `DataSource`, or a dataset name)
    and calibrated on `calibration_images` train images of it (every class represented).
    Images are prepared with the model's evaluation transform (the source's `interpolation`
    and `crop_pct` over it). Without a source nothing is checked, and int8 cannot be
    calibrated.

    Returns (report, output_dir).
    """
    from ghostnet_tf.evaluation import check_input_fits
    from ghostnet_tf.loading import keras_predictor, load_keras_model
    from ghostnet_tf.weights import KERAS_SUFFIX, WEIGHTS_SUFFIX

    formats = list(formats)
    check_formats(formats)
    path = os.fspath(model)
    if not os.path.isfile(path):
        raise ArgumentError("model", f"{path}: no such file.")
    if not path.endswith((KERAS_SUFFIX, WEIGHTS_SUFFIX)):
        raise ArgumentError("model", f"{path}: expected a .keras file, or a .weights.h5 file "
                                     "with its architecture.")
    if path.endswith(WEIGHTS_SUFFIX) and arch is None:
        raise ArgumentError("arch", f"is needed: {path} holds weights only; give its model "
                                    "name (and a dataset, which sets its classes and input "
                                    "size).")
    calibrated = [kind for kind in formats if FORMAT_TABLE[kind].calibrated]
    if calibrated and not source:
        raise ArgumentError("source", f"is needed: formats include {calibrated[0]}, which is "
                                       "calibrated on the dataset's train split.")
    if calibrated and calibration_images < 1:
        raise ArgumentError("calibration_images", f"must be at least 1 for {calibrated[0]}, "
                                                  f"got {calibration_images}.")
    if path.endswith(WEIGHTS_SUFFIX) and not source:
        raise ArgumentError("source", f"is needed: {path} holds weights only, and the "
                                       "dataset sets the classes and input size of the model.")
    from ghostnet_tf.data.source import DataSource
    from ghostnet_tf.evaluation import numpy_batches

    source = source and DataSource.of(source)

    def dataset_of(split, input_shape=None, transform=None, arch=None):
        return _export_dataset(source, split, input_shape, transform, arch)

    info = None
    if path.endswith(WEIGHTS_SUFFIX):
        info = dataset_of("test", arch=arch)[1]
    keras_model = load_keras_model(
        path, arch, classes=info and info.num_classes, input_shape=info and info.image_shape)
    predictor = keras_predictor(keras_model, path)
    output_dir = os.fspath(output_dir or default_output_dir(path))
    check_output_dir(output_dir)
    _EarlierExport.of(output_dir, keras_model, replace)  # refused before any data is read
    calibration = check = class_names = images_transform = None
    if source:
        transform = predictor.eval_transform
        images_transform = source.transform_of_images(transform)
        test_set, info = dataset_of("test", predictor.input_shape, transform)
        class_names = info.class_names
        check_input_fits(predictor, info)
        check = _first_images(numpy_batches(test_set), check_images) if check_images else None
        if calibrated:
            train_set, _ = dataset_of("train", predictor.input_shape, transform)
            calibration = balanced_images(numpy_batches(train_set), info.num_classes,
                                          calibration_images)
    report = export(keras_model, output_dir, formats, class_names=class_names,
                    calibration_images=calibration, check_images=check, options=options,
                    replace=replace, progress=progress, eval_transform=images_transform)
    return report, output_dir


_EXPORT_BATCH = 64


def _export_dataset(source, split, input_shape=None, transform=None, arch=None):
    """Evaluation-preprocessed images of `split` for a model of `input_shape` (or `arch`'s),
    in a fixed shuffled order (image folders are sorted by class, and calibration wants every
    class early), and the DatasetInfo."""
    from ghostnet_tf.data import make_dataset
    from ghostnet_tf.models import registry

    if arch is not None:
        entry = registry.model_entry(arch, argument="arch")
        input_shape, transform = entry.input_shape, entry.eval_transform
    return make_dataset(source, split, batch_size=_EXPORT_BATCH, training=False,
                        shuffle=True, seed=0, image_size=input_shape and input_shape[0],
                        eval_transform=transform and source.eval_transform(transform),
                        array_shape=source.array_shape_for(input_shape))


def _first_images(batches, count):
    """The first `count` images of (images, labels) numpy batches."""
    images, taken = [], 0
    for batch, _ in batches:
        images.append(batch)
        taken += len(batch)
        if taken >= count:
            break
    return np.concatenate(images)[:count]


def describe(report):
    """A table of an export report: file, size, top-1 agreement, largest difference."""
    lines = [f"{'format':<13} {'MB':>7} {'top-1 agree':>11} {'max |dp|':>9}  file"]
    for kind, entry in report["exports"].items():
        size = f"{entry['bytes'] / 2**20:7.2f}" if "bytes" in entry else f"{'-':>7}"
        check = entry.get("check")
        agree = f"{check['top1_agreement']:11.2%}" if check else f"{'-':>11}"
        diff = f"{check['max_probability_difference']:9.2e}" if check else f"{'-':>9}"
        kept = "  (kept from the earlier export)" if entry.get("kept") else ""
        lines.append(f"{kind:<13} {size} {agree} {diff}  {entry['path']}{kept}")
    return "\n".join(lines)


def describe_int8(report, worst=10):
    """What the int8 files of an export report say to do: the `worst` ops of the int8
    `.tflite` by their own error, the `--float-ops` flags that keep them in float, and a
    warning for each int8 file that agrees with the Keras model on fewer than
    INT8_AGREEMENT_GOAL of the check images. Empty when there is nothing to say."""
    import shlex

    lines = []
    layers = report["exports"].get("int8", {}).get("layers")
    if layers:
        lines.append(f"The {min(worst, len(layers))} int8 ops with the largest error of their "
                     f"own (of {len(layers)}; all in export.json):")
        lines.append(f"{'SQNR dB':>8} {'RMSE/scale':>10}  op  output tensor")
        lines += [f"{_decibels(layer['sqnr_db'])} {layer['rmse_over_scale']:10.3f}  "
                  f"{layer['op']}  {layer['tensor']}" for layer in layers[:worst]]
        lines.append("To keep them in float (the file then takes float input), export again "
                     "with: " + " ".join(f"--float-ops {shlex.quote(layer['tensor'])}"
                                         for layer in layers[:worst]))
    for kind, entry in report["exports"].items():
        check = entry.get("check", {})
        if not check.get("meets_int8_goal", True):
            lines.append(
                f"WARNING: {os.path.basename(entry['path'])} picks the Keras model's class on "
                f"only {check['top1_agreement']:.1%} of {check['images']} check images (below "
                f"{INT8_AGREEMENT_GOAL:.0%}): its accuracy may be well below the float "
                "model's. Measure it with eval.py before shipping it, and keep the worst ops "
                "in float (above) or ship a float file.")
    return "\n".join(lines)


def _decibels(sqnr):
    return f"{'exact':>8}" if sqnr is None else f"{sqnr:8.2f}"
