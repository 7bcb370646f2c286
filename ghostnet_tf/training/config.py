"""Training configuration: YAML recipes under configs/, overridable key by key.

A config has five sections; `ghostnet_tf.training.schema` declares every key with its
default, its rule and its help (`DEFAULTS` is derived from it). A recipe file sets
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

from ghostnet_tf.checks import ArgumentError
from ghostnet_tf.training.schema import DEFAULTS, check_value, keys


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


def validate(config):
    """Check types and ranges; raise ConfigError naming the key and the valid values."""
    for key, value in flatten(config).items():
        problem = check_value(key, value, keys()[key].metadata)
        if problem:
            raise ConfigError(problem)
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
    training = config["training"]
    if training["label_weight"] is None and not 0 <= training["distillation_weight"] <= 1:
        raise ConfigError("training.distillation_weight must be in [0, 1] when "
                          "training.label_weight is null (their sum is 1), got "
                          f"{training['distillation_weight']!r}; set training.label_weight "
                          "to weigh the label loss yourself.")
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
