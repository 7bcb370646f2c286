"""Export to SavedModel, LiteRT (`.tflite`: float32, float16, dynamic-range int8, full int8)
and ONNX (float32, and int8 in ONNX Runtime's QDQ form), each file checked against Keras.

- `formats.py`: the table of formats (`FORMAT_TABLE`), from which everything else derives.
- `saved_model.py`, `litert.py`, `onnx.py`: one module per target, each converting its
  formats and opening its files again (`load_predictor` opens them through the table).
- `common.py`: `ExportOptions`, the export's own file names, the float32 inference copy.
- `folder.py`: `export` and `export_model_file`, which write a whole export folder.
"""
from ghostnet_tf.export.common import (EXPORT_REPORT, LABELS_FILE, ExportOptions, as_rgb,
                                       inference_copy, labels_text)
from ghostnet_tf.export.folder import (balanced_images, check_output_dir, compare,
                                       default_output_dir, describe, describe_int8, export,
                                       export_model_file, weights_sha256)
from ghostnet_tf.export.formats import (CALIBRATED_KINDS, EXPORT_FILES, FLOAT_AGREEMENT_GOAL,
                                        FLOAT_KINDS, FORMAT_TABLE, FORMATS, INT8_AGREEMENT_GOAL,
                                        KNOWN_FORMATS, Format, check_formats)
from ghostnet_tf.export.litert import (MediaPipePredictor, TFLitePredictor, calibrated_int8,
                                       convert_tflite, flex_ops, int8_layer_report,
                                       quantized_int8, tflite_files, tflite_op_counts,
                                       tflite_op_outputs, tflite_saved_model)
from ghostnet_tf.export.onnx import ONNXPredictor, onnx_files, onnx_op_counts
from ghostnet_tf.export.saved_model import export_saved_model, saved_model_function

__all__ = [
    "CALIBRATED_KINDS", "EXPORT_FILES", "EXPORT_REPORT", "FLOAT_AGREEMENT_GOAL", "FLOAT_KINDS",
    "FORMATS", "FORMAT_TABLE", "INT8_AGREEMENT_GOAL", "KNOWN_FORMATS", "LABELS_FILE",
    "ExportOptions", "Format", "MediaPipePredictor", "ONNXPredictor", "TFLitePredictor", "as_rgb",
    "balanced_images", "calibrated_int8", "check_formats", "check_output_dir", "compare", "convert_tflite",
    "default_output_dir", "describe", "describe_int8", "export", "export_model_file",
    "export_saved_model", "flex_ops", "inference_copy", "int8_layer_report", "labels_text",
    "onnx_files", "onnx_op_counts", "quantized_int8", "saved_model_function", "tflite_files",
    "tflite_op_counts", "tflite_op_outputs", "tflite_saved_model", "weights_sha256"]
