"""Training configuration: YAML recipes under configs/, overridable key by key.

A config has five sections; `DEFAULTS` lists every key with its default. A recipe file sets
some of them (and may start from another recipe: `base: cifar10_resnet56.yaml`, a path
relative to the recipe), overrides ("section.key=value", train.py's --set) change any of
them (values are parsed as YAML), and the resolved config is written beside the checkpoints.
Unknown keys and bad values stop before anything is built, with the valid keys or values in
the message. No TensorFlow here.
"""
import copy
import os
import re

import yaml

from ghostnet_tf.checks import (INTERPOLATIONS, LABEL_OFFSETS, ArgumentError,
                                check_crop_pct)


class _Loader(yaml.SafeLoader):
    """YAML 1.1 reads 1e-4 (no dot) as a string; read it as a float, as YAML 1.2 does."""


_Loader.add_implicit_resolver(
    "tag:yaml.org,2002:float",
    re.compile(r"""^(?:[-+]?(?:[0-9][0-9_]*)\.[0-9_]*(?:[eE][-+]?[0-9]+)?
               |[-+]?(?:[0-9][0-9_]*)(?:[eE][-+]?[0-9]+)
               |\.[0-9_]+(?:[eE][-+]?[0-9]+)?
               |[-+]?\.(?:inf|Inf|INF)
               |\.(?:nan|NaN|NAN))$""", re.X),
    list("-+0123456789."))


def parse_yaml(text):
    """YAML (a string or a file) with safe types only, floats as YAML 1.2 reads them."""
    return yaml.load(text, Loader=_Loader)


DEFAULTS = {
    "run_name": None,  # default: the config file's name
    # Seeds everything: initial weights, data order, augmentation, dropout
    # (keras.utils.set_random_seed); data.deterministic makes two runs give equal weights.
    "seed": 0,
    "model": {
        "name": "ghost_resnet56",  # a registry name: ghostnet-profile --list
        # Options of the models that take them (None: the model's default): the paper's s
        # and d of the Ghost models made by ghostify and their Ghost module's version (1;
        # 2: GhostNetV2's DFC attention), GhostNet's dropout (0.2).
        "ratio": None,
        "dw_size": None,
        "version": None,
        "dropout": None,
        "sync_bn": False,  # batch statistics over all replicas
        # Start from: "imagenet" (a GhostNet's published weights, downloaded on first use),
        # a GhostNet .weights.h5 file or PyTorch checkpoint (the classifier left out when the
        # classes differ), or a .keras file of an earlier run (every layer whose name and
        # shapes match).
        "weights": None,
        "freeze_backbone": False,  # train only the classifier (fine-tuning's first phase)
    },
    "data": {
        "name": "cifar10",  # see ghostnet_tf.data.make_dataset; "synthetic" = random in-memory
        "data_dir": None,
        "labels_file": None,
        "image_size": None,  # image-file datasets; default: the model's input size
        "batch_size": 128,  # per replica
        "min_scale": 0.08,
        # Evaluation resize of image-file datasets; None: the model's (its registry entry).
        "crop_pct": None,
        "interpolation": None,
        "randaugment_magnitude": 0.0,
        "random_erasing": 0.0,
        "mixup_alpha": 0.0,
        "cutmix": 0.0,
        "skip_corrupt": False,
        # TFRecord shards: what to subtract from the stored labels: auto (1, the build
        # scripts' convention, unless some label is 0), 0 or 1.
        "label_offset": "auto",
        "shuffle_buffer": 10000,
        "seed": None,  # of the data order and augmentation; None: the run's seed
        # A reproducible data order and TensorFlow's deterministic ops (slower): with a seed,
        # two runs of the same config end with the same weights.
        "deterministic": False,
    },
    "optimizer": {
        "name": "sgd",  # sgd, rmsprop, adamw
        "lr": 0.1,  # at a global batch of lr_batch_size; scaled linearly to the real one
        "lr_batch_size": 128,
        "momentum": 0.9,
        "nesterov": False,
        # sgd/rmsprop: L2 added to the gradients of convolution and dense kernels, as
        # PyTorch's weight_decay; adamw: decoupled decay. Never on BN parameters or biases.
        "weight_decay": 1e-4,
        "ema_decay": 0.0,  # > 0: keep an EMA of the weights, used for evaluation and export
        "epsilon": None,  # rmsprop: inside the square root, as TensorFlow's (default 1e-7)
    },
    "schedule": {
        # step (multiply by decay at iterations), cosine (with linear warm-up), exponential
        # (multiply by decay every decay_epochs, after a linear warm-up), constant
        "name": "step",
        "iterations": None,  # length of training in steps; or give epochs
        "epochs": None,
        "boundaries": [32000, 48000],  # step: iterations where lr is multiplied by decay
        "decay": 0.1,
        "decay_epochs": 2.4,  # exponential
        "warmup_epochs": 0.0,  # cosine, exponential
    },
    "training": {
        "strategy": "auto",  # auto, mirrored, multi_worker, one_device, tpu, default
        "precision": "float32",  # float32, mixed_float16, mixed_bfloat16
        "jit_compile": "auto",  # auto, true, false
        "label_smoothing": 0.0,
        # Knowledge distillation: a .keras file or a registry model with published weights,
        # whose predictions on each training batch the student also learns (GhostNetV3).
        "teacher": None,
        # The loss is label_weight x the label cross-entropy + distillation_weight x the
        # cross-entropy to the teacher's softmax (scaled by T^2). label_weight None: 1 -
        # distillation_weight, a convex combination that keeps the step size of a recipe
        # tuned without a teacher; GhostNetV3's recipe sets both to 1.
        "distillation_weight": 0.5,
        "label_weight": None,
        "distillation_temperature": 1.0,  # of both softmaxes
        "checkpoint_dir": "checkpoints",
        "steps_per_epoch": None,  # default: training examples // global batch
        "validation_batch_size": None,  # default: 2 x batch_size
        "validation_limit": None,  # evaluate on the first N validation batches only
        "backup_every_steps": None,  # also save the resume state every N steps
        # Split the CPU into N logical devices and mirror over them: distribution without GPUs.
        "cpu_devices": None,
        # Keys a resumed run may change from the config it was started with (e.g.
        # [schedule.epochs] to extend it); others must stay, or the run is refused.
        "resume_changes": [],
    },
}

CHOICES = {
    ("optimizer", "name"): ("sgd", "rmsprop", "adamw"),
    ("schedule", "name"): ("step", "cosine", "exponential", "constant"),
    ("training", "strategy"): ("auto", "mirrored", "multi_worker", "one_device", "tpu",
                               "default"),
    ("training", "precision"): ("float32", "mixed_float16", "mixed_bfloat16"),
    ("training", "jit_compile"): ("auto", True, False),
    ("data", "interpolation"): (None,) + INTERPOLATIONS,
    ("data", "label_offset"): LABEL_OFFSETS,
}
NON_NEGATIVE = {("optimizer", "weight_decay"), ("optimizer", "momentum"),
                ("optimizer", "ema_decay"), ("schedule", "warmup_epochs"),
                ("training", "label_smoothing"), ("data", "randaugment_magnitude"),
                ("data", "random_erasing"), ("data", "mixup_alpha"), ("data", "cutmix"),
                ("model", "dropout"), ("training", "distillation_weight"),
                ("training", "label_weight")}
POSITIVE = {("optimizer", "lr"), ("optimizer", "lr_batch_size"), ("data", "batch_size"),
            ("schedule", "iterations"), ("schedule", "epochs"), ("data", "shuffle_buffer"),
            ("training", "steps_per_epoch"), ("training", "validation_batch_size"),
            ("training", "validation_limit"), ("training", "backup_every_steps"),
            ("data", "image_size"), ("training", "cpu_devices"), ("data", "crop_pct"),
            ("schedule", "decay_epochs"), ("optimizer", "epsilon"),
            ("model", "ratio"), ("model", "dw_size"), ("model", "version"),
            ("training", "distillation_temperature")}


class ConfigError(ValueError):
    """A bad recipe or override; the message says what is valid."""


def _valid_keys(section=None):
    if section is None:
        return ", ".join(DEFAULTS)
    return ", ".join(f"{section}.{key}" for key in DEFAULTS[section])


def _merge(config, updates, source):
    for key, value in updates.items():
        if key not in DEFAULTS:
            raise ConfigError(f"{source}: unknown key {key!r}; valid keys: {_valid_keys()}.")
        if isinstance(DEFAULTS[key], dict):
            if not isinstance(value, dict):
                raise ConfigError(f"{source}: {key!r} must be a section of keys "
                                  f"({_valid_keys(key)}), got {value!r}.")
            for sub_key, sub_value in value.items():
                if sub_key not in DEFAULTS[key]:
                    raise ConfigError(f"{source}: unknown key {key}.{sub_key}; valid keys: "
                                      f"{_valid_keys(key)}.")
                config[key][sub_key] = sub_value
        else:
            config[key] = value


def parse_override(text):
    """"section.key=value" -> {"section": {"key": value}}, the value parsed as YAML."""
    if "=" not in text:
        raise ConfigError(f"override {text!r}: expected section.key=value, e.g. "
                          "optimizer.lr=0.2.")
    path, raw = text.split("=", 1)
    try:
        value = parse_yaml(raw) if raw != "" else None
    except yaml.YAMLError as error:
        raise ConfigError(f"override {text!r}: cannot parse the value: {error}") from None
    keys = path.strip().split(".")
    if len(keys) == 1:
        return {keys[0]: value}
    if len(keys) == 2:
        return {keys[0]: {keys[1]: value}}
    raise ConfigError(f"override {text!r}: keys have the form section.key.")


BASE_KEY = "base"


def read_recipe(path, seen=()):
    """The settings of the recipe file at `path`, its `base` recipe's first (recursively),
    merged section by section."""
    if not os.path.isfile(path):
        raise ConfigError(f"recipe {path}: no such file.")
    try:
        with open(path) as handle:
            recipe = parse_yaml(handle) or {}
    except yaml.YAMLError as error:
        raise ConfigError(f"recipe {path}: not valid YAML: {error}") from None
    if not isinstance(recipe, dict):
        raise ConfigError(f"recipe {path}: expected a mapping of sections.")
    base = recipe.pop(BASE_KEY, None)
    if base is None:
        return recipe
    if not isinstance(base, str):
        raise ConfigError(f"recipe {path}: base must be the path of a recipe, got {base!r}.")
    base_path = os.path.normpath(os.path.join(os.path.dirname(path), base))
    if os.path.abspath(base_path) in seen:
        raise ConfigError(f"recipe {path}: base {base} leads back to itself.")
    merged = read_recipe(base_path, seen + (os.path.abspath(path),))
    for key, value in recipe.items():
        if isinstance(value, dict) and isinstance(merged.get(key), dict):
            merged[key] = {**merged[key], **value}
        else:
            merged[key] = value
    return merged


def load_config(path=None, overrides=()):
    """The resolved config: defaults, then the recipe file at `path` (with its base
    recipes), then `overrides` ("section.key=value" strings)."""
    config = copy.deepcopy(DEFAULTS)
    if path is not None:
        _merge(config, read_recipe(path), path)
        if config["run_name"] is None:
            config["run_name"] = os.path.splitext(os.path.basename(path))[0]
    for override in overrides:
        _merge(config, parse_override(override), f"override {override}")
    validate(config)
    return config


def _check_number(where, value, positive):
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise ConfigError(f"{where} must be a number, got {value!r}.")
    if value < 0 or (positive and value == 0):
        raise ConfigError(f"{where} must be {'positive' if positive else '>= 0'}, got {value!r}.")


def validate(config):
    """Check types and ranges; raise ConfigError naming the key and the valid values."""
    for (section, key), choices in CHOICES.items():
        if config[section][key] not in choices:
            raise ConfigError(f"{section}.{key} must be one of {list(choices)}, got "
                              f"{config[section][key]!r}.")
    for section, key in NON_NEGATIVE | POSITIVE:
        value = config[section][key]
        if value is not None:
            _check_number(f"{section}.{key}", value, (section, key) in POSITIVE)
    for section, key in (("data", "batch_size"), ("schedule", "iterations"),
                         ("training", "steps_per_epoch")):
        value = config[section][key]
        if value is not None and not isinstance(value, int):
            raise ConfigError(f"{section}.{key} must be an integer, got {value!r}.")
    for section, key in (("model", "freeze_backbone"), ("model", "sync_bn")):
        if not isinstance(config[section][key], bool):
            raise ConfigError(f"{section}.{key} must be true or false, got "
                              f"{config[section][key]!r}.")
    if config["model"]["weights"] is not None:
        from ghostnet_tf.weights import weights_kind

        try:
            weights_kind(config["model"]["weights"])
        except ArgumentError as error:
            raise ConfigError(error.message("model.weights")) from None
    teacher = config["training"]["teacher"]
    if teacher is not None and (not isinstance(teacher, str) or not teacher):
        raise ConfigError("training.teacher must be a .keras file or a registry model name, "
                          f"got {teacher!r}.")
    from ghostnet_tf.data.files import is_dataset_name

    if config["data"]["name"] != "synthetic" and not is_dataset_name(config["data"]["name"]):
        raise ConfigError(f"data.name {config['data']['name']!r} is not a dataset: use cifar10, "
                          "cifar100, mnist, fashion_mnist, folder, imagenet, tfds:<name> or "
                          "synthetic.")
    schedule = config["schedule"]
    if (schedule["iterations"] is None) == (schedule["epochs"] is None):
        if schedule["iterations"] is None:
            raise ConfigError("the run has no length: set schedule.epochs or "
                              "schedule.iterations, or start from a recipe that does (train.py "
                              "--config configs/fashion_mnist_ghost_resnet56.yaml; configs/ "
                              "has the others).")
        raise ConfigError("Give exactly one of schedule.iterations and schedule.epochs, got "
                          f"{schedule['iterations']!r} and {schedule['epochs']!r}: set the "
                          "other to null.")
    if schedule["name"] in ("step", "exponential") and not 0 < schedule["decay"] < 1:
        raise ConfigError(f"schedule.decay must be in (0, 1), got {schedule['decay']!r}.")
    if schedule["name"] == "step":
        boundaries = schedule["boundaries"]
        if not isinstance(boundaries, list) or any(
                isinstance(b, bool) or not isinstance(b, int) or b <= 0 for b in boundaries) \
                or boundaries != sorted(boundaries):
            raise ConfigError("schedule.boundaries must be a rising list of positive "
                              f"iteration counts, got {boundaries!r}.")
    if config["data"]["crop_pct"] is not None:
        try:
            check_crop_pct(config["data"]["crop_pct"], "data.crop_pct")
        except ArgumentError as error:
            raise ConfigError(error.message("data.crop_pct")) from None
    for key in ("ratio", "dw_size", "version"):
        value = config["model"][key]
        if value is not None and not isinstance(value, int):
            raise ConfigError(f"model.{key} must be an integer, got {value!r}.")
    if config["model"]["dw_size"] is not None and config["model"]["dw_size"] % 2 == 0:
        raise ConfigError(f"model.dw_size must be odd, got {config['model']['dw_size']!r}.")
    if config["model"]["dropout"] is not None and not 0 <= config["model"]["dropout"] < 1:
        raise ConfigError(f"model.dropout must be in [0, 1), got {config['model']['dropout']!r}.")
    training = config["training"]
    if training["label_weight"] is None and not 0 <= training["distillation_weight"] <= 1:
        raise ConfigError("training.distillation_weight must be in [0, 1] when "
                          "training.label_weight is null (their sum is 1), got "
                          f"{training['distillation_weight']!r}; set training.label_weight "
                          "to weigh the label loss yourself.")
    for section, key in (("", "seed"), ("data", "seed")):
        value = config[section][key] if section else config[key]
        if (value is not None or not section) and (
                isinstance(value, bool) or not isinstance(value, int) or value < 0):
            raise ConfigError(f"{section + '.' if section else ''}{key} must be an integer "
                              f">= 0{', or null' if section else ''}, got {value!r}.")
    if not 0 <= config["training"]["label_smoothing"] < 1:
        raise ConfigError("training.label_smoothing must be in [0, 1), got "
                          f"{config['training']['label_smoothing']!r}.")
    changes = config["training"]["resume_changes"]
    known = set(flatten(DEFAULTS))
    if not isinstance(changes, list) or any(key not in known for key in changes):
        raise ConfigError("training.resume_changes must be a list of config keys "
                          f"(section.key), got {changes!r}.")
    if not isinstance(config["run_name"], str) or not config["run_name"] or \
            os.sep in config["run_name"]:
        raise ConfigError(f"run_name must be a non-empty name without {os.sep!r}, got "
                          f"{config['run_name']!r}.")
    return config


def flatten(config):
    """{"section.key": value} of a config (top-level keys as they are)."""
    flat = {}
    for key, value in config.items():
        if isinstance(value, dict):
            flat.update({f"{key}.{sub}": sub_value for sub, sub_value in value.items()})
        else:
            flat[key] = value
    return flat


def dump_config(config):
    return yaml.safe_dump(config, sort_keys=False)
