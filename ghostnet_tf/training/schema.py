"""The recipe's schema: one dataclass per section, each field with its default, its rule and
its help. The defaults (`DEFAULTS`), the per-key checks of `validate`, the keys `--set` takes,
the keys a resumed run may change freely and the model options the trainer passes on all
derive from these classes. Pure Python: no TensorFlow.
"""
import dataclasses
from typing import Optional

from ghostnet_tf.checks import INTERPOLATIONS, LABEL_OFFSETS


def setting(default, help, kind="any", *, choices=None, low=None, strict=False, high=None,
            high_open=False, odd=False, nullable=None, free=False, option=False):
    """A recipe key: its `default`, `help`, and its rule.

    kind: "number", "integer", "bool", "seed" (an integer >= 0), "str" or "any" (checked by
    `validate` itself); `choices` replaces it. Numbers: `low` (0: ">= 0", or "> 0" when `strict`),
    `high` (`high_open`: below it), `odd`. `nullable`: None is allowed (default: when the
    default is None). `free`: a resumed run may change it without training.resume_changes.
    `option`: a model constructor option, passed on when set.
    """
    rule = {"kind": kind, "choices": choices, "low": low, "strict": strict, "high": high,
            "high_open": high_open, "odd": odd, "free": free, "option": option, "help": help,
            "nullable": default is None if nullable is None else nullable}
    if isinstance(default, list):
        return dataclasses.field(default_factory=lambda: list(default), metadata=rule)
    return dataclasses.field(default=default, metadata=rule)


def _number(default, help, positive=False, **rule):
    return setting(default, help, "number", low=0, strict=positive, **rule)


def _count(default, help, **rule):
    return setting(default, help, "integer", low=0, strict=True, **rule)


@dataclasses.dataclass
class Model:
    name: str = setting("ghost_resnet56", "a registry name: ghostnet-profile --list", "str")
    ratio: Optional[int] = _count(None, "the Ghost models' s (ghostify)", option=True)
    dw_size: Optional[int] = _count(None, "the Ghost models' d, odd", odd=True, option=True)
    version: Optional[int] = _count(None, "their Ghost module's version (1; 2: GhostNetV2's "
                                          "DFC attention; 3: GhostNetV3's branches)",
                                    option=True)
    dropout: Optional[float] = _number(None, "GhostNet's dropout (0.2)", high=1,
                                       high_open=True, option=True)
    sync_bn: bool = setting(False, "batch statistics over all replicas", "bool")
    weights: Optional[str] = setting(
        None, 'start from: "imagenet" (a GhostNet\'s published weights), a GhostNet '
              ".weights.h5 file or PyTorch checkpoint (the classifier left out when the "
              "classes differ), or a .keras file of an earlier run (every layer whose name "
              "and shapes match)")
    freeze_backbone: bool = setting(False, "train only the classifier (fine-tuning's first "
                                           "phase)", "bool")


@dataclasses.dataclass
class Data:
    name: str = setting("cifar10", 'see ghostnet_tf.data.make_dataset; "synthetic": random '
                                   "in-memory")
    data_dir: Optional[str] = setting(None, "where the dataset's files are", free=True)
    labels_file: Optional[str] = setting(None, "class of each image of a flat folder",
                                         free=True)
    image_size: Optional[int] = _count(None, "image files are decoded to it (default: the "
                                             "model's input size); the array datasets "
                                             "(CIFAR, MNIST) are resized to it and given the "
                                             "model's channels (default: their own)")
    batch_size: int = _count(128, "per replica")
    min_scale: float = _number(0.08, "random-resized crop: the smallest area kept",
                               positive=True, high=1)
    crop_pct: Optional[float] = _number(None, "evaluation resize of image-file datasets; "
                                              "None: the model's", positive=True, high=1)
    interpolation: Optional[str] = setting(None, "evaluation resize; None: the model's",
                                           choices=(None,) + INTERPOLATIONS)
    randaugment_magnitude: float = _number(0.0, "RandAugment's magnitude; 0: off")
    random_erasing: float = _number(0.0, "probability of random erasing")
    mixup_alpha: float = _number(0.0, "MixUp's alpha; 0: off")
    cutmix: float = _number(0.0, "CutMix's alpha; 0: off")
    skip_corrupt: bool = setting(False, "skip unreadable images instead of stopping", "bool",
                                 free=True)
    label_offset: object = setting("auto", "TFRecord shards: what to subtract from the "
                                           "stored labels: auto (1 unless some label is 0), "
                                           "0 or 1", choices=LABEL_OFFSETS)
    shuffle_buffer: int = _count(10000, "shuffle buffer of the tf.data pipelines", free=True)
    seed: Optional[int] = setting(None, "of the data order and augmentation; None: the run's "
                                        "seed", "seed")
    deterministic: bool = setting(False, "a reproducible data order and deterministic ops "
                                         "(slower): two runs end with the same weights",
                                  "bool")


@dataclasses.dataclass
class Optimizer:
    name: str = setting("sgd", "the optimizer", choices=("sgd", "rmsprop", "adamw"))
    lr: float = _number(0.1, "at a global batch of lr_batch_size; scaled linearly to the "
                             "real one", positive=True)
    lr_batch_size: int = _number(128, "the global batch that lr is given for", positive=True)
    momentum: float = _number(0.9, "sgd and rmsprop")
    nesterov: bool = setting(False, "sgd: Nesterov momentum", "bool")
    weight_decay: float = _number(1e-4, "sgd/rmsprop: L2 added to the gradients of "
                                        "convolution and dense kernels, as PyTorch's; adamw: "
                                        "decoupled. Never on BN parameters or biases")
    ema_decay: float = _number(0.0, "> 0: keep an EMA of the weights, used for evaluation "
                                    "and export")
    epsilon: Optional[float] = _number(None, "rmsprop: inside the square root, as "
                                             "TensorFlow's (default 1e-7)", positive=True)


@dataclasses.dataclass
class Schedule:
    name: str = setting("step", "step (multiply by decay at boundaries), cosine (with linear "
                                "warm-up), exponential (multiply by decay every decay_epochs "
                                "after a warm-up), constant",
                        choices=("step", "cosine", "exponential", "constant"))
    iterations: Optional[int] = _count(None, "length of training in steps; or give epochs")
    epochs: Optional[float] = _number(None, "length of training in epochs", positive=True)
    boundaries: list = setting([32000, 48000], "step: iterations where lr is multiplied by "
                                               "decay, rising")
    decay: float = _number(0.1, "step and exponential: the factor, in (0, 1)")
    decay_epochs: float = _number(2.4, "exponential: epochs between decays", positive=True)
    warmup_epochs: float = _number(0.0, "cosine and exponential: linear warm-up")


@dataclasses.dataclass
class Training:
    strategy: str = setting("auto", "tf.distribute strategy",
                            choices=("auto", "mirrored", "multi_worker", "one_device", "tpu",
                                     "default"))
    precision: str = setting("float32", "compute precision",
                             choices=("float32", "mixed_float16", "mixed_bfloat16"))
    jit_compile: object = setting("auto", "XLA", choices=("auto", True, False), free=True)
    label_smoothing: float = _number(0.0, "of the label cross-entropy", high=1,
                                     high_open=True)
    teacher: Optional[str] = setting(None, "knowledge distillation: a .keras file or a "
                                           "registry model with published weights")
    distillation_weight: float = _number(0.5, "weight of the cross-entropy to the teacher's "
                                              "softmax (scaled by T^2)")
    label_weight: Optional[float] = _number(None, "weight of the label cross-entropy; None: "
                                                  "1 - distillation_weight")
    distillation_temperature: float = _number(1.0, "of both softmaxes", positive=True)
    quantize: Optional[str] = setting(
        None, "int8: quantization-aware training, the model trained in simulated int8 (start "
              "it from a trained model with model.weights; export.py then writes the int8 "
              "file from it); int8_per_tensor: the same with one weight scale per "
              "convolution, for accelerators that take no other",
        choices=(None, "int8", "int8_per_tensor"))
    checkpoint_dir: str = setting("checkpoints", "where run folders go", "str", free=True)
    steps_per_epoch: Optional[int] = _count(None, "default: training examples // global "
                                                  "batch")
    validation_batch_size: Optional[int] = _count(None, "default: 2 x batch_size", free=True)
    validation_limit: Optional[int] = _count(None, "evaluate on the first N validation "
                                                   "batches only")
    backup_every_steps: Optional[int] = _count(None, "also save the resume state every N "
                                                     "steps", free=True)
    cpu_devices: Optional[int] = _count(None, "split the CPU into N logical devices and "
                                              "mirror over them")
    resume_changes: list = setting([], "keys a resumed run may change (e.g. "
                                       "[schedule.epochs])", free=True)


@dataclasses.dataclass
class Recipe:
    run_name: Optional[str] = setting(None, "the run folder's name; default: the recipe "
                                            "file's name")
    seed: int = setting(0, "seeds everything: weights, data order, augmentation, dropout",
                        "seed")
    model: Model = dataclasses.field(default_factory=Model)
    data: Data = dataclasses.field(default_factory=Data)
    optimizer: Optimizer = dataclasses.field(default_factory=Optimizer)
    schedule: Schedule = dataclasses.field(default_factory=Schedule)
    training: Training = dataclasses.field(default_factory=Training)


# {section name: its dataclass}; the other fields of Recipe are top-level keys.
SECTIONS = {field.name: field.default_factory for field in dataclasses.fields(Recipe)
            if dataclasses.is_dataclass(field.default_factory)}


def keys():
    """{"section.key" (or "key" at the top): the dataclass field} of every recipe key."""
    found = {}
    for field in dataclasses.fields(Recipe):
        if field.name in SECTIONS:
            found.update({f"{field.name}.{inner.name}": inner
                          for inner in dataclasses.fields(SECTIONS[field.name])})
        else:
            found[field.name] = field
    return found


DEFAULTS = dataclasses.asdict(Recipe())
FREE_KEYS = frozenset(key for key, field in keys().items() if field.metadata["free"])
MODEL_OPTIONS = tuple(field.name for field in dataclasses.fields(Model)
                      if field.metadata["option"])


def check_value(key, value, rule):
    """The problem of `value` for the key named `key` under `rule`, or None."""
    if value is None and rule["nullable"] and (rule["choices"] is None or None in
                                               rule["choices"]):
        return None
    if rule["choices"] is not None:
        if value not in rule["choices"] or isinstance(value, bool) != any(
                isinstance(choice, bool) and choice == value for choice in rule["choices"]):
            return f"{key} must be one of {list(rule['choices'])}, got {value!r}."
        return None
    kind = rule["kind"]
    if kind == "bool" and not isinstance(value, bool):
        return f"{key} must be true or false, got {value!r}."
    if kind == "seed" and (isinstance(value, bool) or not isinstance(value, int) or value < 0):
        return (f"{key} must be an integer >= 0{', or null' if rule['nullable'] else ''}, got "
                f"{value!r}.")
    if kind == "str" and (not isinstance(value, str) or not value):
        return f"{key} must be a non-empty string, got {value!r}."
    if kind in ("number", "integer"):
        return _number_problem(key, value, rule)
    return None


def _number_problem(key, value, rule):
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        return f"{key} must be a number, got {value!r}."
    if value < rule["low"] or (rule["strict"] and value == rule["low"]):
        return f"{key} must be {'positive' if rule['strict'] else '>= 0'}, got {value!r}."
    if rule["kind"] == "integer" and not isinstance(value, int):
        return f"{key} must be an integer, got {value!r}."
    high = rule["high"]
    if high is not None and (value > high or (rule["high_open"] and value == high)):
        return (f"{key} must be in {'(' if rule['strict'] else '['}{rule['low']}, {high}"
                f"{')' if rule['high_open'] else ']'}, got {value!r}.")
    if rule["odd"] and value % 2 == 0:
        return f"{key} must be odd, got {value!r}."
    return None
