"""The trainer behind train.py: `keras.Model.fit` with the library's models and datasets.

Each run writes `checkpoints/<run-name>/`: config.yaml (the resolved config), last.keras and
best.keras (written to a temporary file, then renamed), best.json (the best validation
accuracy so far: Keras does not restore ModelCheckpoint's best value on resume), backup/
(Keras' BackupAndRestore state: rerunning the same command after a crash resumes from it),
tensorboard/, log.csv, curves.png and, at the end, results.json.

On the TensorFlow backend the data come from tf.data and the replicas from tf.distribute;
on the JAX backend (the GPU machine, which has no TensorFlow) the small datasets come from
numpy arrays and the replicas from `keras.distribution` (see `distribution.Placement`).
`train()` raises on every failure and leaves the process as it found it (dtype policy,
signal handlers, JAX distribution), so it can be called from Python as well as train.py.
"""
import contextlib
import dataclasses
import math
import os
import sys

import keras

from ghostnet_tf.atomic import write_file, write_json
from ghostnet_tf.checks import ArgumentError
from ghostnet_tf.compat import prepare_multi_worker_fit, sublayers
from ghostnet_tf.data.source import DataSource
from ghostnet_tf.data.training_input import TF_DATA_AUGMENTATIONS
from ghostnet_tf.export.common import LABELS_FILE, labels_text
from ghostnet_tf.loading import load_keras_model
from ghostnet_tf.models import registry
from ghostnet_tf.models.reparameterize import has_train_form_layers, reparameterize
from ghostnet_tf.models.ghostnet import convertible_models
from ghostnet_tf.models.transfer import freeze_all_but_classifier
from ghostnet_tf.profile import profile_model
from ghostnet_tf.training import callbacks as run_callbacks
from ghostnet_tf.training.config import ConfigError, dump_config
from ghostnet_tf.training.distillation import (
    Distiller,
    check_teacher_config,
    load_teacher,
    student_of,
)
from ghostnet_tf.training.distribution import Placement, is_tensorflow, worker_info
from ghostnet_tf.training.run_folder import RunLock, check_resumed_config, fit_done
from ghostnet_tf.training.schema import MODEL_OPTIONS
from ghostnet_tf.weights import KERAS_FILE, copy_weights_by_name, weights_kind



class TrainingInterrupted(Exception):
    """SIGINT or SIGTERM stopped training at step `step`; the resume state, saved at step
    `saved_step` (None: none was saved yet), is kept in `backup_dir`."""

    def __init__(self, signum, backup_dir, step, saved_step):
        super().__init__(run_callbacks.stop_message(signum, backup_dir, saved_step, step))
        self.signum, self.backup_dir = signum, backup_dir
        self.step, self.saved_step = step, saved_step


def _print(message):
    print(message, flush=True)  # shown at once when stdout is a pipe or a log file


def _clear_input_errors():
    """A corrupt image met by tf.data ends training in one line that names its file, not in
    TensorFlow's traceback."""
    if not is_tensorflow():
        return contextlib.nullcontext()
    from ghostnet_tf.data.images import corrupt_images_explained
    return corrupt_images_explained()


# ---------------------------------------------------------------------------- data
def _one_hot_labels(config):
    data = config["data"]
    return config["training"]["label_smoothing"] > 0 or data["mixup_alpha"] > 0 or \
        data["cutmix"] > 0


def data_source(config):
    """The `DataSource` of the data.* keys; ConfigError names the key of a bad value."""
    data = config["data"]
    try:
        return DataSource(data["name"], data["data_dir"], data["labels_file"],
                          data["skip_corrupt"], data["label_offset"], data["interpolation"],
                          data["crop_pct"])
    except ArgumentError as error:
        raise ConfigError(error.message(f"data.{error.argument}")) from None


def data_seed(config):
    """The seed of the data order and augmentation: data.seed, else the run's seed."""
    seed = config["data"]["seed"]
    return config["seed"] if seed is None else seed


def make_data(config, global_batch, entry=None):
    """(training stream, validation data, DatasetInfo) of the configured dataset, prepared
    as the registry `entry` of the model expects (input size, evaluation transform): see
    `ghostnet_tf.data.training_input`. ConfigError names the data.* key of a bad value."""
    from ghostnet_tf.data import Augmentation
    from ghostnet_tf.data.training_input import TrainingInput, tf_data_only, training_data

    entry = entry or registry.model_entry(config["model"]["name"])
    data, training = config["data"], config["training"]
    validation_batch = training["validation_batch_size"] or 2 * data["batch_size"]
    source = "synthetic" if data["name"] == "synthetic" else data_source(config)
    augmentation = Augmentation(**{key: data[key] for key in TF_DATA_AUGMENTATIONS})
    refused = tf_data_only(augmentation)
    if refused and source != "synthetic" and not is_tensorflow():  # said in recipe keys
        raise ConfigError(f"data.{', data.'.join(refused)}: the {keras.backend.backend()} "
                          "backend's numpy batches have the pad-crop-flip augmentation only; "
                          "train with the TensorFlow backend, or set them to 0.")
    spec = TrainingInput(
        source=source, global_batch=global_batch,
        validation_batch=validation_batch * (global_batch // data["batch_size"]),
        image_size=data["image_size"] or entry.input_shape[0],
        array_shape=_array_shape(source, data["image_size"], entry),
        eval_transform=None if source == "synthetic" else
        source.eval_transform(entry.eval_transform),
        augmentation=augmentation,
        seed=data_seed(config), classes=entry.classes, min_scale=data["min_scale"],
        shuffle_buffer=data["shuffle_buffer"], deterministic=data["deterministic"],
        validation_limit=training["validation_limit"], one_hot=_one_hot_labels(config))
    try:
        return training_data(spec, tensorflow=is_tensorflow())
    except ArgumentError as error:
        raise ConfigError(error.message(f"data.{error.argument}")) from None


def _array_shape(source, image_size, entry):
    """The shape that data.image_size gives the images of an array dataset (CIFAR, MNIST),
    with the channels the model needs (None: their own); None without data.image_size."""
    from ghostnet_tf.data.files import ARRAY_DATASETS

    if image_size is None or source == "synthetic" or source.name not in ARRAY_DATASETS:
        return None
    return (image_size, image_size, entry.input_channels)


# ---------------------------------------------------------------------------- model
def check_model_config(config):
    """The registry entry of model.name, after checking that every model.* key set in
    `config` is one that model takes; raises ConfigError before anything is built or read."""
    model = config["model"]
    try:
        entry = registry.model_entry(model["name"])
    except ArgumentError as error:
        raise ConfigError(error.message("model.name")) from None
    for option in MODEL_OPTIONS:
        if model[option] is not None and option not in entry.options:
            raise ConfigError(f"model.{option}: {entry.name} takes no {option} (its options: "
                              f"{', '.join(entry.options)}); unset it with --set "
                              f"model.{option}=null.")
    weights = model["weights"]
    if weights is not None and weights_kind(weights) != KERAS_FILE:
        if "weights" not in entry.options:
            raise ConfigError(f"model.weights {weights!r}: published weights, .weights.h5 "
                              f"files and PyTorch checkpoints are for {', '.join(convertible_models())}; start "
                              f"{entry.name} from a .keras file of a run.")
    if weights is not None and weights_kind(weights) == KERAS_FILE and not os.path.isfile(weights):
        raise ConfigError(f"model.weights {weights}: no such file.")
    if model["freeze_backbone"] and weights is None:
        raise ConfigError("model.freeze_backbone trains the classifier alone, but model.weights "
                          "is null: the backbone would stay random. Start from weights "
                          "(model.weights: imagenet, a .weights.h5 or .keras file), or set "
                          "model.freeze_backbone=false.")
    if config["training"]["quantize"] and config["training"]["precision"] != "float32":
        raise ConfigError(f"training.quantize {config['training']['quantize']} simulates int8 "
                          f"on float32 values; training.precision "
                          f"{config['training']['precision']} would round them first: set "
                          "training.precision=float32.")
    return entry


def build_model(config, info, entry=None, log=_print):
    """The configured model for the dataset described by `info` (classes, image shape);
    `entry` is `check_model_config(config)`'s (checked here when not given). Starting from a
    `.keras` file, `log` is told which layers were not copied."""
    model_config = config["model"]
    entry = entry or check_model_config(config)
    if entry.input_channels is not None and info.image_shape[-1] != entry.input_channels:
        raise ConfigError(f"model.name {entry.name} takes images of {entry.input_channels} "
                          f"channels; data.name {config['data']['name']!r} has "
                          f"{info.image_shape[-1]}: use a model of the cifar_* families, or "
                          "set data.image_size (e.g. 96) to train on RGB copies at that size.")
    kwargs = {"classes": info.num_classes, "input_shape": info.image_shape}
    kwargs.update({option: model_config[option] for option in MODEL_OPTIONS
                   if model_config[option] is not None})
    weights = model_config["weights"]
    from_keras_file = weights is not None and weights_kind(weights) == KERAS_FILE
    if weights is not None and not from_keras_file:
        kwargs["weights"] = weights
    try:
        model = entry.build(**kwargs)
    except ArgumentError as error:
        raise ConfigError(error.message(f"model.{error.argument}")) from None
    if from_keras_file:
        try:
            source = load_keras_model(weights)
        except ArgumentError as error:
            raise ConfigError(f"model.weights {error.problem}") from None
        copied = copy_weights_by_name(source, model)
        if not copied:
            raise ConfigError(f"model.weights {weights}: no layer fits {entry.name}.")
        left = [layer.name for layer in model.layers if layer.weights and layer.name not in copied]
        if left:
            log(f"model.weights {weights}: {len(copied)} layers copied; not copied (no layer of "
                f"that name and shapes there): {', '.join(left)}")
    if model_config["freeze_backbone"]:
        freeze_all_but_classifier(model)
    if model_config["sync_bn"]:
        for layer in sublayers(model, recursive=True):
            if isinstance(layer, keras.layers.BatchNormalization):
                layer.synchronized = True
    if config["training"]["quantize"]:
        from ghostnet_tf.qat import quantization_aware
        model = quantization_aware(
            model, per_channel=config["training"]["quantize"] != "int8_per_tensor")
    return model


# The variables that weight decay acts on: convolution and dense kernels.
KERNEL_NAMES = ("kernel", "depthwise_kernel", "pointwise_kernel")


def add_l2_to_kernels(model, weight_decay):
    """PyTorch-style weight decay for SGD/RMSprop: L2 on the gradients of convolution and
    dense kernels only (never BN parameters or biases). Keras' own `weight_decay` is
    decoupled, which under momentum 0.9 decays about 10x less than the recipes assume."""
    regularizer = keras.regularizers.L2(weight_decay / 2)  # d/dw (wd/2 w^2) = wd w
    for variable in model.trainable_weights:
        if variable.path.split("/")[-1] in KERNEL_NAMES:
            variable.regularizer = regularizer


def make_schedule(config, learning_rate, steps_per_epoch, total_steps):
    schedule = config["schedule"]
    if schedule["name"] == "constant":
        return learning_rate
    if schedule["name"] == "step":
        boundaries = list(schedule["boundaries"])
        values = [learning_rate * schedule["decay"] ** i for i in range(len(boundaries) + 1)]
        return keras.optimizers.schedules.PiecewiseConstantDecay(boundaries, values)
    warmup_steps = int(schedule["warmup_epochs"] * steps_per_epoch)
    if schedule["name"] == "exponential":
        from ghostnet_tf.training.schedules import WarmupStepExponentialDecay
        return WarmupStepExponentialDecay(
            learning_rate, max(1, round(schedule["decay_epochs"] * steps_per_epoch)),
            schedule["decay"], warmup_steps)
    if warmup_steps >= total_steps:
        raise ConfigError(f"schedule.warmup_epochs {schedule['warmup_epochs']} is "
                          f"{warmup_steps} steps, which leaves none of the run's {total_steps} "
                          "steps for the cosine decay: set schedule.warmup_epochs below "
                          f"{total_steps / steps_per_epoch:g} (e.g. --set "
                          f"schedule.warmup_epochs={total_steps / steps_per_epoch / 5:.2g}).")
    if warmup_steps:
        return keras.optimizers.schedules.CosineDecay(
            0.0, total_steps - warmup_steps, warmup_target=learning_rate,
            warmup_steps=warmup_steps)
    return keras.optimizers.schedules.CosineDecay(learning_rate, total_steps)


def make_optimizer(config, schedule, model):
    optimizer = config["optimizer"]
    ema = dict(use_ema=optimizer["ema_decay"] > 0, ema_momentum=optimizer["ema_decay"] or 0.99)
    if optimizer["name"] == "adamw":
        adamw = keras.optimizers.AdamW(schedule, weight_decay=optimizer["weight_decay"], **ema)
        adamw.exclude_from_weight_decay(var_names=["gamma", "beta", "bias"])
        return adamw
    if optimizer["weight_decay"]:
        add_l2_to_kernels(model, optimizer["weight_decay"])
    if optimizer["name"] == "rmsprop":
        # Keras' RMSprop adds epsilon inside the square root, as TensorFlow's (and timm's
        # rmsproptf) do: optimizer.epsilon 1e-3 is the official recipes' "eps .001".
        return keras.optimizers.RMSprop(schedule, momentum=optimizer["momentum"],
                                        epsilon=optimizer["epsilon"] or 1e-7, **ema)
    return keras.optimizers.SGD(schedule, momentum=optimizer["momentum"],
                                nesterov=optimizer["nesterov"], **ema)


def compile_model(model, config, optimizer):
    """Compile with the run's loss and the metrics: accuracy, top-5 and the plain
    cross-entropy ("cross_entropy", what eval.py reports as the loss; Keras' "loss" also
    counts label smoothing and the weight decay's L2 penalty)."""
    smoothing = config["training"]["label_smoothing"]
    if _one_hot_labels(config):
        loss = keras.losses.CategoricalCrossentropy(label_smoothing=smoothing)
        metrics = [keras.metrics.TopKCategoricalAccuracy(5, name="top5"),
                   keras.metrics.CategoricalCrossentropy(name="cross_entropy")]
    else:
        loss = keras.losses.SparseCategoricalCrossentropy()
        metrics = [keras.metrics.SparseTopKCategoricalAccuracy(5, name="top5"),
                   keras.metrics.SparseCategoricalCrossentropy(name="cross_entropy")]
    jit = config["training"]["jit_compile"]
    model.compile(optimizer=optimizer, loss=loss, metrics=["accuracy", *metrics],
                  jit_compile=jit)


# ---------------------------------------------------------------------------- train
def train(config, log=_print, exit_on_second_signal=False):
    """Train as `config` says; return the results dict (also written to results.json).

    Raises ConfigError (a ValueError) for a config that cannot run, FloatingPointError when
    the loss becomes NaN, and TrainingInterrupted after SIGINT/SIGTERM (the resume state is
    kept). A second signal raises it at the next step's end without a save, or, with
    `exit_on_second_signal` (for a process of its own, as train.py), ends the process at
    once. The global dtype policy, signal handlers and JAX distribution are restored.

    Rerunning a config resumes its run: from the resume state after a crash, or, when the
    fit had finished but the results were not yet written, by writing them from the final
    checkpoint. A run folder is used by one process at a time (run.lock), and a resumed run
    must keep its config, but for the keys listed in training.resume_changes.
    """
    training = config["training"]
    entry = check_model_config(config)  # before any data is read
    check_teacher_config(config)
    for key in ("data_dir", "labels_file"):
        path = config["data"][key]
        if path is not None and not os.path.exists(os.fspath(path)):
            raise ConfigError(f"data.{key} {path} does not exist.")
    run_dir = os.path.join(training["checkpoint_dir"], config["run_name"])
    results_path = os.path.join(run_dir, "results.json")
    if os.path.exists(results_path):
        raise ConfigError(f"run {config['run_name']!r} is complete ({results_path} exists): "
                          "choose another run_name to train again.")
    is_chief, _ = worker_info()
    with contextlib.ExitStack() as stack:
        if is_chief:
            stack.enter_context(RunLock(run_dir))
        config_path = os.path.join(run_dir, "config.yaml")
        if os.path.exists(config_path):
            changed = check_resumed_config(config, _read_saved_config(config_path))
            if changed:
                log(f"resuming {config['run_name']} with changed {', '.join(changed)}")
        _seed_everything(config)
        if training["precision"] != "float32":
            stack.callback(keras.config.set_dtype_policy, keras.config.dtype_policy())
            keras.config.set_dtype_policy(training["precision"])
        placement = stack.enter_context(Placement(training["strategy"],
                                                  training["cpu_devices"]))
        return _train(config, entry, run_dir, results_path, placement, log,
                      exit_on_second_signal)


def _seed_everything(config):
    """Seed Python, numpy and the backend (initial weights, dropout, Keras' random layers)
    with the run's seed; with data.deterministic, turn TensorFlow's deterministic ops on (TF
    cannot turn them off again in the process)."""
    keras.utils.set_random_seed(config["seed"])
    if config["data"]["deterministic"] and is_tensorflow():
        import tensorflow as tf
        tf.config.experimental.enable_op_determinism()


def _read_saved_config(path):
    import yaml

    from ghostnet_tf.training.config import parse_yaml

    try:
        with open(path) as handle:
            saved = parse_yaml(handle)
    except (OSError, yaml.YAMLError) as error:
        raise ConfigError(f"{path} cannot be read ({error}): the run's config is needed to "
                          "resume it.") from None
    if not isinstance(saved, dict):
        raise ConfigError(f"{path} is not a config: the run's config is needed to resume it.")
    return saved


@dataclasses.dataclass(frozen=True)
class _Plan:
    """The run's arithmetic: batch, learning rate and length, from the config, the
    replicas and the training set's size."""
    global_batch: int
    learning_rate: float  # scaled to the global batch
    steps_per_epoch: int
    total_steps: int

    @property
    def epochs(self):
        return math.ceil(self.total_steps / self.steps_per_epoch)


def _plan(config, replicas, num_examples):
    global_batch = config["data"]["batch_size"] * replicas
    optimizer, schedule = config["optimizer"], config["schedule"]
    steps_per_epoch = config["training"]["steps_per_epoch"] or max(
        1, num_examples // global_batch)
    return _Plan(
        global_batch=global_batch,
        learning_rate=optimizer["lr"] * global_batch / optimizer["lr_batch_size"],
        steps_per_epoch=steps_per_epoch,
        total_steps=schedule["iterations"] or math.ceil(schedule["epochs"] * steps_per_epoch))


def _compiled_model(config, entry, info, plan, log):
    """The model that fit trains (a Distiller around the student when there is a teacher),
    compiled, with the student's counts and the teacher (or None)."""
    model = build_model(config, info, entry, log)
    counts = profile_model(model)
    optimizer = make_optimizer(config, make_schedule(
        config, plan.learning_rate, plan.steps_per_epoch, plan.total_steps), model)
    teacher = load_teacher(config, model)
    if teacher is not None:  # fit trains the student; checkpoints save it alone
        training = config["training"]
        model = Distiller(model, teacher, training["distillation_weight"],
                          training["distillation_temperature"], training["label_weight"])
    compile_model(model, config, optimizer)
    return model, counts, teacher


@dataclasses.dataclass
class _RunCallbacks:
    """The callbacks of one fit, and handles on those whose state the run reads after it."""
    backup: run_callbacks.ResumeState
    nan_stop: run_callbacks.NaNStop
    checkpoints: run_callbacks.RunCheckpoints
    progress: run_callbacks.Progress
    all: list

    def close_logs(self):
        """Flush and close the CSV and TensorBoard logs of a fit left early (Keras closes
        them in on_train_end, which a stop skips)."""
        for callback in self.all:
            if isinstance(callback, (keras.callbacks.CSVLogger,
                                     keras.callbacks.TensorBoard)):
                callback.on_train_end()


def _run_callbacks(config, run_dir, plan, backup, is_chief, log):
    nan_stop = run_callbacks.NaNStop()
    callbacks = [run_callbacks.StopAtStep(plan.total_steps), nan_stop, backup]
    if config["optimizer"]["ema_decay"] > 0:
        # Validation and the checkpoints use the EMA weights.
        callbacks.append(keras.callbacks.SwapEMAWeights(swap_on_epoch=True))
    checkpoints = run_callbacks.RunCheckpoints(run_dir, is_chief)
    progress = run_callbacks.Progress(os.path.join(run_dir, "progress.json"),
                                      plan.global_batch, is_chief, plan.total_steps, log)
    callbacks += [checkpoints, progress]
    if is_chief:
        callbacks.append(keras.callbacks.CSVLogger(os.path.join(run_dir, "log.csv"),
                                                   append=True))
        if is_tensorflow():
            callbacks.append(keras.callbacks.TensorBoard(os.path.join(run_dir, "tensorboard")))
    # Last: the checkpoints and logs of the final epoch are written when it marks the fit done.
    callbacks.append(run_callbacks.FitDone(run_dir, plan.total_steps, is_chief))
    return _RunCallbacks(backup, nan_stop, checkpoints, progress, callbacks)


def _write_config(config, run_dir):
    write_file(os.path.join(run_dir, "config.yaml"), dump_config(config))


def _fit_sessions(plan, steps_done):
    """(initial epoch, epochs, steps per epoch, first step) of each `fit` that trains from
    step `steps_done` to the end: the rest of an epoch cut by a stop or a crash first, with
    its own steps only, then the whole epochs. Epoch e is always steps [e * spe, (e+1) * spe),
    as in a run never stopped, and ends once: one validation, one log row."""
    spe = plan.steps_per_epoch
    epoch, into = divmod(steps_done, spe)
    sessions = []
    if into:
        sessions.append((epoch, epoch + 1, min(spe, plan.total_steps - epoch * spe) - into,
                         steps_done))
        epoch += 1
    if epoch < plan.epochs:
        sessions.append((epoch, plan.epochs, spe, epoch * spe))
    return sessions


def _fit(model, train_stream, validation_data, plan, run, run_dir, steps_done, placement,
         is_chief, log, exit_on_second_signal):
    """Fit `model` from step `steps_done` to the end; raises TrainingInterrupted after a
    signal and FloatingPointError after a NaN loss."""
    stop = run_callbacks.SignalStop(run.backup, plan.total_steps, log, exit_on_second_signal)
    with stop:  # until the stop's bookkeeping is done: a second signal there ends train.py
        try:
            with placement.scope():
                for initial_epoch, epochs, steps, first_step in _fit_sessions(plan,
                                                                              steps_done):
                    if first_step:
                        log(f"the data stream resumes at step {first_step}")
                    model.fit(train_stream(first_step, steps), validation_data=validation_data,
                              initial_epoch=initial_epoch, epochs=epochs, steps_per_epoch=steps,
                              callbacks=run.all + [stop],
                              shuffle=False,  # the input pipeline shuffles
                              # A progress bar on a terminal, one line per epoch in a log file.
                              verbose=(1 if sys.stdout.isatty() else 2) if is_chief else 0)
                    if model.stop_training:  # StopAtStep, NaNStop
                        break
        except (run_callbacks.StopRequested, KeyboardInterrupt):
            if stop.signal is None:
                raise  # a KeyboardInterrupt of the user's own, outside any signal of ours
        if stop.signal is not None:
            run.close_logs()
            run.progress.save()  # the cut epoch's steps and time count
        if is_chief and os.path.exists(os.path.join(run_dir, "log.csv")):
            run_callbacks.save_curves(os.path.join(run_dir, "log.csv"),
                                      os.path.join(run_dir, "curves.png"))
    if stop.signal is not None:
        raise TrainingInterrupted(stop.signal, run.backup.backup_dir,
                                  run_callbacks.optimizer_step(model), run.backup.saved_step)
    if run.nan_stop.stopped_at is not None:
        raise FloatingPointError(
            f"the loss became NaN or infinite at batch {run.nan_stop.stopped_at}: training "
            "stopped. Lower optimizer.lr, or check the data.")


def _evaluate_as_shipped(model, config, validation_data):
    """The validation metrics of the model as it ships, and the counts of its folded form
    (None when nothing folds): GhostNetV3's branches are folded first."""
    evaluated, deployed_counts, student = model, None, student_of(model)
    if has_train_form_layers(student):
        evaluated = reparameterize(student)
        compile_model(evaluated, config, keras.optimizers.SGD())
        deployed_counts = profile_model(evaluated)
    return evaluated.evaluate(validation_data, verbose=0, return_dict=True), deployed_counts


def _train(config, entry, run_dir, results_path, placement, log, exit_on_second_signal):
    training = config["training"]
    is_chief, worker_index = worker_info()
    train_stream, validation_data, info = make_data(
        config, config["data"]["batch_size"] * placement.replicas, entry)
    if not info.num_classes or info.num_classes < 2:
        raise ConfigError(f"data.name {config['data']['name']!r} gives {info.num_classes} "
                          "class(es): a classifier needs two classes or more.")
    plan = _plan(config, placement.replicas, info.num_examples)
    with placement.scope():
        model, counts, teacher = _compiled_model(config, entry, info, plan, log)

    os.makedirs(run_dir, exist_ok=True)
    if is_chief:
        _write_config(config, run_dir)
        # Beside best.keras and last.keras: eval.py, predict.py and export.py name the classes.
        write_file(os.path.join(run_dir, LABELS_FILE), labels_text(info.class_names))
    backup_dir = os.path.join(run_dir, "backup" if is_chief else f"backup_worker_{worker_index}")
    backup = run_callbacks.ResumeState(backup_dir, plan.steps_per_epoch,
                                       training["backup_every_steps"], log)
    epochs_done, steps_done = backup.resume_point()
    finished = fit_done(run_dir) is not None or steps_done >= plan.total_steps
    if finished:
        log(f"{config['run_name']}: training had finished ({plan.total_steps} steps); "
            "writing its results from last.keras")
    elif steps_done:
        log(f"resuming {config['run_name']} after epoch {epochs_done} "
            f"(step {steps_done} of {plan.total_steps}) from {backup_dir}")
    run = _run_callbacks(config, run_dir, plan, backup, is_chief, log)
    log(f"run {config['run_name']} in {run_dir}: {model.name} on {info.name} "
        f"({info.num_examples} training images, {info.num_classes} classes), "
        f"{counts.params:,} trainable params"
        + (" (the classifier's: backbone frozen)" if config["model"]["freeze_backbone"] else "")
        + f", {counts.macs / 1e6:.1f}M MACs"
        + (f"; distilled from {training['teacher']}" if teacher is not None else ""))
    log(f"replicas {placement.replicas} x batch {config['data']['batch_size']} = global batch "
        f"{plan.global_batch}; lr {plan.learning_rate:g} (= {config['optimizer']['lr']:g} x "
        f"{plan.global_batch} / {config['optimizer']['lr_batch_size']}); {plan.total_steps} "
        f"steps = {plan.epochs} epoch{'s' * (plan.epochs != 1)} of {plan.steps_per_epoch}; "
        f"precision {training['precision']}; jit_compile {model.jit_compile}; backend "
        f"{keras.backend.backend()}")

    with contextlib.ExitStack() as stack:
        stack.enter_context(_clear_input_errors())
        if training["strategy"] == "multi_worker":
            # Undone after the final evaluation, which needs it as much as fit.
            stack.callback(prepare_multi_worker_fit(
                model, placement.strategy, next(iter(train_stream(0, plan.steps_per_epoch)))))
        if finished:
            with placement.scope():
                model = keras.saving.load_model(os.path.join(run_dir, "last.keras"),
                                                compile=False)
                compile_model(model, config, keras.optimizers.SGD())
        else:
            _fit(model, train_stream, validation_data, plan, run, run_dir, steps_done,
                 placement, is_chief, log, exit_on_second_signal)
        evaluation, deployed_counts = _evaluate_as_shipped(model, config, validation_data)
    results = _results(config, model, info, evaluation, counts, deployed_counts, plan, run,
                       placement.replicas)
    if is_chief:
        write_json(results_path, results)
    backup.remove()  # the run is recorded: its resume state is no longer needed
    folded = "" if deployed_counts is None else (
        f" of the folded model ({deployed_counts.params:,} params, "
        f"{deployed_counts.macs / 1e6:.1f}M MACs)")
    log(f"top-1 {results['top1']:.4f}, top-5 {results['top5']:.4f}{folded} "
        f"(best top-1 {results['best_top1']:.4f} at epoch {results['best_epoch']}); "
        f"results in {results_path}")
    return results


def _results(config, model, info, evaluation, counts, deployed_counts, plan, run, replicas):
    seconds = run.progress.state["train_seconds"]
    results = {
        "run_name": config["run_name"], "model": model.name, "dataset": info.name,
        "top1": float(evaluation["accuracy"]), "top5": float(evaluation["top5"]),
        # The cross-entropy, as eval.py reports it; the objective adds label smoothing and
        # the weight decay's L2 penalty (the "loss" of log.csv).
        "loss": float(evaluation["cross_entropy"]),
        "objective_loss": float(evaluation["loss"]), "best_top1": run.checkpoints.best,
        "best_epoch": run.checkpoints.best_epoch, "params": counts.params,
        "macs": counts.macs, "steps": plan.total_steps, "epochs": plan.epochs,
        "steps_per_epoch": plan.steps_per_epoch, "global_batch": plan.global_batch,
        "learning_rate": plan.learning_rate, "schedule": config["schedule"],
        "wall_seconds": seconds,
        "images_per_second": run.progress.state["train_images"] / max(seconds, 1e-9),
        "replicas": replicas, "backend": keras.backend.backend(),
    }
    if deployed_counts is not None:
        results.update(deploy_params=deployed_counts.params, deploy_macs=deployed_counts.macs)
    return results
