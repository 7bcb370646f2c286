"""Pretrained weights: where they are published, how any `weights=` value is resolved, and
the conversion of the official PyTorch checkpoints (and timm's, and PaddleClas's).

Below the model files, as timm's `_builder`, `_hub` and `_pretrained`: a model constructor
describes its `Architecture` and calls `load_weights`; nothing here imports a model.

- `sources`: `WeightSource`, `PublishedWeights`, the hub endpoint and the cache path.
- `resolve`: `weights_kind`, the one rule for what a value names, and `load_weights`.
- `download`: published weights on first use (download, verify, convert, cache).
- `official`: the official state_dict's keys, and PyTorch's files.
- `paddle`: PaddleClas's keys, and its `.pdparams` files read without PaddlePaddle.
- `convert`: the conversion by key name, for both formats.

Importing this package imports neither keras nor TensorFlow.
"""
from ghostnet_tf.weights.convert import (CHECKPOINT_FORMATS, CHECKPOINT_SUFFIXES,
                                         DeployFormCheckpoint, load_state_dict,
                                         mismatch_summary, save_converted)
from ghostnet_tf.weights.official import (CHECKPOINT_KEYS, official_key, official_keys,
                                          read_state_dict)
from ghostnet_tf.weights.paddle import paddle_keys, read_pdparams
from ghostnet_tf.weights.resolve import (CHECKPOINT, KERAS_FILE, KERAS_SUFFIX, TAG,
                                         WEIGHTS_FILE, WEIGHTS_SUFFIX, Architecture,
                                         copy_weights_by_name, load_weights,
                                         load_weights_file, weights_kind)
from ghostnet_tf.weights.sources import (PublishedWeights, WeightSource, hub_endpoint,
                                         keras_cache_dir, pretrained_weights_path)

__all__ = [
    "CHECKPOINT", "CHECKPOINT_FORMATS", "CHECKPOINT_KEYS", "CHECKPOINT_SUFFIXES", "KERAS_FILE", "KERAS_SUFFIX", "TAG",
    "WEIGHTS_FILE", "WEIGHTS_SUFFIX", "Architecture", "DeployFormCheckpoint",
    "PublishedWeights", "WeightSource", "copy_weights_by_name", "hub_endpoint",
    "keras_cache_dir", "load_state_dict", "load_weights", "load_weights_file",
    "mismatch_summary", "official_key", "official_keys", "paddle_keys",
    "pretrained_weights_path", "read_pdparams", "read_state_dict", "save_converted", "weights_kind"]
