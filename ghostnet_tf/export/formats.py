"""The table of export formats: one row per format, naming the module (target) that writes and
loads its files. Everything else derives from it: the default formats, which ones are
calibrated, the extras they need, the order of export.json, and how `load_predictor` opens a
file. A new format is one row here, and a new module when it has a new target.

A target module has `SUFFIX` (its files' extension; None for a folder, which then has a
`MARKER` file that tells it from other folders), `steps(formats)`,
`write(model, folder, formats, conversion, step)` -> {name: export.json entry},
`load(path, runtime)` -> `Opened`, and optionally `runs_here()`, false where its files cannot
be run (and so not checked against the model) on this machine.
"""
import dataclasses
import importlib.util
import os
from typing import Optional

from ghostnet_tf.checks import ArgumentError
from ghostnet_tf.export import (coreml, keras_file, keras_hub_preset, litert, onnx,
                                saved_model)


@dataclasses.dataclass(frozen=True)
class Format:
    name: str  # the --formats name and export.json's key
    file: str  # the file (or folder) in the export
    target: object  # the module that writes and loads it
    calibrated: bool = False  # converted with calibration images (int8)
    float: bool = True  # must agree with the Keras model (FLOAT_AGREEMENT_GOAL)
    default: bool = False  # written when no formats are given
    needs: tuple = ()  # modules it needs beyond the library's dependencies...
    extra: Optional[str] = None  # ...and the pip extra that installs them


_ONNX = {"needs": ("tf2onnx", "onnxruntime"), "extra": "onnx"}
FORMAT_TABLE = {row.name: row for row in (
    Format("saved_model", "saved_model", saved_model, default=True),
    Format("float32", "model_float32.tflite", litert, default=True),
    Format("float16", "model_float16.tflite", litert, default=True),
    Format("dynamic_int8", "model_dynamic_int8.tflite", litert, float=False, default=True),
    Format("int8", "model_int8.tflite", litert, calibrated=True, float=False, default=True),
    Format("onnx", "model.onnx", onnx, **_ONNX),
    Format("onnx_int8", "model_onnx_int8.onnx", onnx, calibrated=True, float=False, **_ONNX),
    Format("keras", "model" + keras_file.SUFFIX, keras_file),
    Format("keras_hub", "keras_hub_preset", keras_hub_preset, needs=("keras_hub",),
           extra="hub"),
    Format("coreml", "model.mlpackage", coreml, needs=("coremltools",), extra="coreml"),
)}
FORMATS = tuple(name for name, row in FORMAT_TABLE.items() if row.default)
KNOWN_FORMATS = tuple(FORMAT_TABLE)
CALIBRATED_KINDS = tuple(name for name, row in FORMAT_TABLE.items() if row.calibrated)
FLOAT_KINDS = tuple(name for name, row in FORMAT_TABLE.items() if row.float)
EXPORT_FILES = {name: row.file for name, row in FORMAT_TABLE.items()}
# Float exports must pick the same class as the Keras model on at least this share of images.
FLOAT_AGREEMENT_GOAL = 0.995
# Int8 exports picking the Keras model's class on fewer images than this are flagged loudly:
# their accuracy may be well below the float model's.
INT8_AGREEMENT_GOAL = 0.98


def _targets():
    return list(dict.fromkeys(row.target for row in FORMAT_TABLE.values()))


def check_formats(formats):
    """ArgumentError("formats") unless `formats` are known names whose extras are installed."""
    unknown = [f for f in formats if f not in FORMAT_TABLE]
    if unknown:
        raise ArgumentError("formats", f"has unknown {', '.join(unknown)}; expected some of "
                                       f"{', '.join(FORMAT_TABLE)}.")
    if not formats:
        raise ArgumentError("formats", f"is empty; expected some of "
                                       f"{', '.join(FORMAT_TABLE)}.")
    for row in (FORMAT_TABLE[name] for name in formats):
        missing = [module for module in row.needs if importlib.util.find_spec(module) is None]
        if missing:
            raise ArgumentError("formats", f"include {row.name}, which needs "
                                           f"{' and '.join(missing)}: pip install -e "
                                           f'".[{row.extra}]".')


def by_target(formats):
    """[(target, [rows])] of `formats`, in the table's order."""
    rows = [row for name, row in FORMAT_TABLE.items() if name in formats]
    return [(target, [row for row in rows if row.target is target]) for target in _targets()
            if any(row.target is target for row in rows)]


def target_of(path):
    """The target whose files `path` is (a folder: the one that writes folders), or None."""
    path = os.fspath(path)
    for target in _targets():
        if (target.SUFFIX is None and os.path.isfile(os.path.join(path, target.MARKER))) or (
                target.SUFFIX is not None and path.endswith(target.SUFFIX)):
            return target
    return None


def runs_here(target):
    """Whether `target`'s files can be run on this machine (Core ML's only on macOS)."""
    return getattr(target, "runs_here", lambda: True)()
