"""The trainer behind train.py: `keras.Model.fit` with the library's models and datasets.

Each run writes `checkpoints/<run-name>/`: config.yaml (the resolved config), last.keras and
best.keras (written to a temporary file, then renamed), best.json (the best validation
accuracy so far: Keras does not restore ModelCheckpoint's best value on resume), backup/
(Keras' BackupAndRestore state: rerunning the same command after a crash resumes from it),
tensorboard/, log.csv, curves.png and, at the end, results.json.

On the TensorFlow backend the data come from tf.data and the replicas from tf.distribute;
on the JAX backend (the GPU machine, which has no TensorFlow) the small datasets come from
numpy arrays and the replicas from `keras.distribution`.
"""
import contextlib
import json
import math
import os
import signal
import sys
import tempfile
import time

import keras
import numpy as np

from ghostnet_tf.atomic import write_atomically, write_json
from ghostnet_tf.data import files
from ghostnet_tf.models import MODELS, get_model
from ghostnet_tf.models.transfer import copy_weights_by_name, freeze_all_but_classifier
from ghostnet_tf.profile import profile_model
from ghostnet_tf.training.config import dump_config

MONITOR = "val_accuracy"


# ---------------------------------------------------------------------------- helpers
def _is_tensorflow():
    return keras.backend.backend() == "tensorflow"


def _worker_info():
    """(is_chief, task index) from TF_CONFIG; a single machine is the chief."""
    tf_config = json.loads(os.environ.get("TF_CONFIG", "{}") or "{}")
    task = tf_config.get("task", {})
    kind, index = task.get("type", "chief"), int(task.get("index", 0))
    has_chief = "chief" in tf_config.get("cluster", {})
    is_chief = kind == "chief" or (kind == "worker" and index == 0 and not has_chief)
    return is_chief, index


# ---------------------------------------------------------------------------- strategy
def split_cpu(count):
    """Split the CPU into `count` logical devices (before TensorFlow initializes them)."""
    import tensorflow as tf

    cpu = tf.config.list_physical_devices("CPU")[0]
    current = tf.config.get_logical_device_configuration(cpu)
    if current is None or len(current) != count:
        tf.config.set_logical_device_configuration(
            cpu, [tf.config.LogicalDeviceConfiguration() for _ in range(count)])


def make_strategy(name, cpu_devices=None):
    """A tf.distribute strategy; `auto` mirrors over the local GPUs when there are several."""
    import tensorflow as tf

    if name == "multi_worker":
        return tf.distribute.MultiWorkerMirroredStrategy()
    if cpu_devices:
        split_cpu(cpu_devices)
    gpus = tf.config.list_logical_devices("GPU")
    if name == "mirrored" or (name == "auto" and len(gpus) > 1):
        devices = None if gpus else [d.name for d in tf.config.list_logical_devices("CPU")]
        return tf.distribute.MirroredStrategy(devices)
    if name == "one_device":
        return tf.distribute.OneDeviceStrategy("/gpu:0" if gpus else "/cpu:0")
    if name == "tpu":
        resolver = tf.distribute.cluster_resolver.TPUClusterResolver()
        tf.config.experimental_connect_to_cluster(resolver)
        tf.tpu.experimental.initialize_tpu_system(resolver)
        return tf.distribute.TPUStrategy(resolver)
    return tf.distribute.get_strategy()


def _jax_distribution():
    """Data parallelism over all local JAX devices, when there are several."""
    devices = keras.distribution.list_devices()
    if len(devices) > 1:
        keras.distribution.set_distribution(keras.distribution.DataParallel(devices=devices))
    return len(devices)


# ---------------------------------------------------------------------------- data
class ArrayBatches(keras.utils.PyDataset):
    """Batches of in-memory arrays for the JAX backend, augmented by Keras layers:
    zero-pad 4, random crop back to size and horizontal flip, image by image."""

    def __init__(self, images, labels, batch_size, training, seed, num_classes=None):
        super().__init__()
        self.images, self.labels = images, labels
        self.batch_size, self.training = batch_size, training
        self.num_classes = num_classes
        self.rng = np.random.default_rng(seed)
        self.order = self.rng.permutation(len(images)) if training else np.arange(len(images))
        height, width = images.shape[1:3]
        self.augment = keras.layers.Pipeline([
            keras.layers.ZeroPadding2D(4),
            keras.layers.RandomCrop(height, width, seed=seed),
            keras.layers.RandomFlip("horizontal", seed=seed),
        ]) if training else None

    def __len__(self):
        count = len(self.images) / self.batch_size
        return int(count) if self.training else math.ceil(count)

    def __getitem__(self, index):
        chosen = self.order[index * self.batch_size:(index + 1) * self.batch_size]
        images = self.images[chosen].astype("float32")
        if self.augment is not None:
            # One crop window per image: Keras' RandomCrop draws one per call.
            images = np.stack([keras.ops.convert_to_numpy(
                self.augment(image[None], training=True))[0] for image in images])
        labels = self.labels[chosen]
        if self.num_classes:
            labels = np.eye(self.num_classes, dtype="float32")[labels]
        return images, labels

    def on_epoch_end(self):
        if self.training:
            self.order = self.rng.permutation(len(self.images))


def _one_hot_labels(config):
    data = config["data"]
    return config["training"]["label_smoothing"] > 0 or data["mixup_alpha"] > 0 or \
        data["cutmix"] > 0


def make_data(config, global_batch):
    """(train data, validation data, DatasetInfo) for the configured dataset."""
    data, training = config["data"], config["training"]
    validation_batch = training["validation_batch_size"] or 2 * data["batch_size"]
    validation_batch *= global_batch // data["batch_size"]
    if data["name"] == "synthetic":
        return _synthetic_data(config, global_batch, validation_batch)
    one_hot = _one_hot_labels(config)
    if not _is_tensorflow():
        if data["name"] not in files.ARRAY_DATASETS:
            raise ValueError(f"data.name {data['name']!r}: the {keras.backend.backend()} "
                             f"backend trains from numpy arrays of "
                             f"{', '.join(files.ARRAY_DATASETS)} only.")
        images, labels, info = files.load_arrays(data["name"], "train", data["data_dir"])
        test_images, test_labels, _ = files.load_arrays(data["name"], "test", data["data_dir"])
        classes = info.num_classes if one_hot else None
        return (ArrayBatches(images, labels, global_batch, True, data["seed"], classes),
                ArrayBatches(test_images, test_labels, validation_batch, False, 0, classes),
                info)

    import tensorflow as tf

    from ghostnet_tf.data import Augmentation, make_dataset

    augmentation = Augmentation(
        randaugment_magnitude=data["randaugment_magnitude"],
        random_erasing=data["random_erasing"], mixup_alpha=data["mixup_alpha"],
        cutmix=data["cutmix"])
    common = dict(data_dir=data["data_dir"], image_size=data["image_size"],
                  labels_file=data["labels_file"], skip_corrupt=data["skip_corrupt"],
                  seed=data["seed"])
    train, info = make_dataset(
        data["name"], "train", batch_size=global_batch, min_scale=data["min_scale"],
        augmentation=augmentation, shuffle_buffer=data["shuffle_buffer"],
        deterministic=data["deterministic"], **common)
    validation, _ = make_dataset(data["name"], "test", batch_size=validation_batch,
                                 crop_pct=data["crop_pct"], class_names=info.class_names,
                                 **common)
    if one_hot:
        classes = info.num_classes
        to_one_hot = lambda x, y: (x, tf.one_hot(y, classes) if y.dtype.is_integer else y)  # noqa: E731
        train, validation = train.map(to_one_hot), validation.map(to_one_hot)
    if training["validation_limit"]:
        validation = validation.take(training["validation_limit"])
    return train.repeat(), validation, info


def _synthetic_data(config, global_batch, validation_batch):
    """Random in-memory batches (the model's speed, free of input cost)."""
    size = config["data"]["image_size"] or 224
    classes = 1000
    info = files.DatasetInfo("synthetic", "train", classes, tuple(map(str, range(classes))),
                             global_batch * 10, (size, size, 3))
    rng = np.random.default_rng(config["data"]["seed"])
    images = rng.uniform(0, 255, (global_batch, size, size, 3)).astype("float32")
    labels = rng.integers(0, classes, global_batch)
    if _one_hot_labels(config):
        labels = np.eye(classes, dtype="float32")[labels]
    if _is_tensorflow():
        import tensorflow as tf

        batch = tf.data.Dataset.from_tensors((images, labels))
        return batch.repeat(), batch.take(1), info

    class Synthetic(keras.utils.PyDataset):
        def __len__(self):
            return 10

        def __getitem__(self, index):
            return images, labels
    return Synthetic(), Synthetic(), info


# ---------------------------------------------------------------------------- model
def build_model(config, info):
    model_config, data = config["model"], config["data"]
    name = model_config["name"]
    if name not in MODELS:
        raise ValueError(f"model.name {name!r} is not a model of the library; choose one of: "
                         f"{', '.join(MODELS)}.")
    kwargs = {"classes": info.num_classes, "input_shape": info.image_shape}
    if name.startswith("ghost_"):
        kwargs.update(ratio=model_config["ratio"], dw_size=model_config["dw_size"])
    if model_config["dropout"] is not None:
        if not name.startswith("ghostnet_"):
            raise ValueError(f"model.dropout is a GhostNet option; {name} has no dropout.")
        kwargs["dropout"] = model_config["dropout"]
    if name.startswith("ghostnet_") and info.image_shape[-1] != 3:
        raise ValueError(f"{name} takes RGB images; data.name {data['name']!r} has "
                         f"{info.image_shape[-1]} channel(s): use a CIFAR model.")
    weights = model_config["weights"]
    if weights is not None and not str(weights).endswith(".keras"):
        if not name.startswith("ghostnet_"):
            raise ValueError(f"model.weights {weights!r}: ImageNet and .weights.h5 weights are "
                             f"for GhostNet; start {name} from a .keras file of a run.")
        kwargs["weights"] = weights
    model = get_model(name, **kwargs)
    if weights is not None and str(weights).endswith(".keras"):
        if not os.path.isfile(weights):
            raise ValueError(f"model.weights {weights}: no such file.")
        source = keras.saving.load_model(weights, compile=False)
        if not copy_weights_by_name(source, model):
            raise ValueError(f"model.weights {weights}: no layer fits {name}.")
    if model_config["freeze_backbone"]:
        freeze_all_but_classifier(model)
    if model_config["sync_bn"]:
        for layer in model._flatten_layers():
            if isinstance(layer, keras.layers.BatchNormalization):
                layer.synchronized = True
    return model


def add_l2_to_kernels(model, weight_decay):
    """PyTorch-style weight decay for SGD/RMSprop: L2 on the gradients of convolution and
    dense kernels only (never BN parameters or biases). Keras' own `weight_decay` is
    decoupled, which under momentum 0.9 decays about 10x less than the recipes assume."""
    regularizer = keras.regularizers.L2(weight_decay / 2)  # d/dw (wd/2 w^2) = wd w
    for variable in model.trainable_weights:
        if variable.path.split("/")[-1] in ("kernel", "depthwise_kernel", "pointwise_kernel"):
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
        return keras.optimizers.RMSprop(schedule, momentum=optimizer["momentum"], **ema)
    return keras.optimizers.SGD(schedule, momentum=optimizer["momentum"],
                                nesterov=optimizer["nesterov"], **ema)


def compile_model(model, config, optimizer):
    smoothing = config["training"]["label_smoothing"]
    if _one_hot_labels(config):
        loss = keras.losses.CategoricalCrossentropy(label_smoothing=smoothing)
        top5 = keras.metrics.TopKCategoricalAccuracy(5, name="top5")
    else:
        loss = keras.losses.SparseCategoricalCrossentropy()
        top5 = keras.metrics.SparseTopKCategoricalAccuracy(5, name="top5")
    jit = config["training"]["jit_compile"]
    model.compile(optimizer=optimizer, loss=loss, metrics=["accuracy", top5], jit_compile=jit)


# ---------------------------------------------------------------------------- callbacks
class StopAtStep(keras.callbacks.Callback):
    """Stop after exactly `total_steps` optimizer steps (schedules count iterations)."""

    def __init__(self, total_steps):
        super().__init__()
        self.total_steps = total_steps

    def on_train_batch_end(self, batch, logs=None):
        if int(keras.ops.convert_to_numpy(self.model.optimizer.iterations)) >= self.total_steps:
            self.model.stop_training = True


class RunCheckpoints(keras.callbacks.Callback):
    """last.keras every epoch and best.keras on improvement, both written atomically, and
    best.json, so that the best value survives a resume."""

    def __init__(self, run_dir, write_files, monitor=MONITOR):
        super().__init__()
        self.run_dir, self.write_files, self.monitor = run_dir, write_files, monitor
        self.best_path = os.path.join(run_dir, "best.json")
        self.best = self.best_epoch = None
        if os.path.exists(self.best_path):
            with open(self.best_path) as handle:
                saved = json.load(handle)
            self.best, self.best_epoch = saved["value"], saved["epoch"]

    def save(self, name):
        if self.write_files:
            write_atomically(os.path.join(self.run_dir, name), self.model.save)
            return
        # Other workers save too, then throw the file away: reading the synchronized
        # variables is a collective operation that every worker must join.
        with tempfile.TemporaryDirectory() as scratch:
            self.model.save(os.path.join(scratch, name))

    def on_epoch_end(self, epoch, logs=None):
        self.save("last.keras")
        value = (logs or {}).get(self.monitor)
        if value is not None and (self.best is None or value > self.best):
            self.best, self.best_epoch = float(value), epoch + 1
            self.save("best.keras")
            if self.write_files:
                write_json(self.best_path, {"monitor": self.monitor, "value": self.best,
                                            "epoch": self.best_epoch})


class Progress(keras.callbacks.Callback):
    """Training seconds and images, summed over resumed sessions (progress.json)."""

    def __init__(self, path, global_batch, write_files):
        super().__init__()
        self.path, self.global_batch, self.write_files = path, global_batch, write_files
        self.state = {"train_seconds": 0.0, "train_images": 0}
        if os.path.exists(path):
            with open(path) as handle:
                self.state = json.load(handle)

    def on_epoch_begin(self, epoch, logs=None):
        self.start, self.steps = time.perf_counter(), 0

    def on_train_batch_end(self, batch, logs=None):
        self.steps += 1

    def on_epoch_end(self, epoch, logs=None):
        # Includes this epoch's validation: the wall time a user waits.
        self.state["train_seconds"] += time.perf_counter() - self.start
        self.state["train_images"] += self.steps * self.global_batch
        if self.write_files:
            write_json(self.path, self.state)


class ResumableBackup(keras.callbacks.BackupAndRestore):
    """BackupAndRestore that also records the optimizer step, so that a resumed run knows
    how many epochs remain (an interrupted epoch is recorded as done)."""

    def _save_model(self):
        super()._save_model()
        metadata = {"epoch": self._current_epoch, "batch": self._last_batch_seen,
                    "iterations": int(keras.ops.convert_to_numpy(
                        self.model.optimizer.iterations))}
        write_json(self._training_metadata_path, metadata)

    def resume_point(self):
        """(epochs done, steps done) of the saved state; (0, 0) for a fresh run."""
        for path in (self._training_metadata_path, self._prev_training_metadata_path):
            if os.path.exists(path):
                with open(path) as handle:
                    metadata = json.load(handle)
                return metadata["epoch"], metadata.get("iterations", 0)
        return 0, 0


class NaNStop(keras.callbacks.TerminateOnNaN):
    """TerminateOnNaN that remembers why, for the final message."""

    stopped_at = None

    def on_batch_end(self, batch, logs=None):
        loss = (logs or {}).get("loss")
        if loss is not None and not np.isfinite(loss):
            self.stopped_at = batch
        super().on_batch_end(batch, logs)


class Interrupted:
    """SIGINT/SIGTERM: finish the current batch, keep the resume state, stop cleanly."""

    def __init__(self, backup):
        self.backup, self.signal = backup, None

    def install(self, model):
        def handler(signum, frame):
            self.signal = signum
            self.backup.delete_checkpoint = False  # keep the state for the next run
            model.stop_training = True
        for signum in (signal.SIGINT, signal.SIGTERM):
            signal.signal(signum, handler)


def save_curves(csv_path, png_path):
    """Loss and accuracy per epoch from log.csv, as a PNG."""
    import csv

    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    with open(csv_path) as handle:
        rows = list(csv.DictReader(handle))
    if not rows:
        return
    epochs = [int(row["epoch"]) + 1 for row in rows]
    figure, axes = plt.subplots(1, 2, figsize=(10, 4))
    for axis, metric in zip(axes, ("loss", "accuracy")):
        for prefix, style in (("", "-"), ("val_", "--")):
            if prefix + metric in rows[0]:
                axis.plot(epochs, [float(row[prefix + metric]) for row in rows], style,
                          label=(prefix or "train_") + metric)
        axis.set_xlabel("epoch")
        axis.set_ylabel(metric)
        axis.grid(alpha=0.3)
        axis.legend()
    figure.tight_layout()
    write_atomically(png_path, lambda path: figure.savefig(path, dpi=100, format="png"))
    plt.close(figure)


def _prepare_multi_worker_fit(model, strategy, train_data):
    """Work around two bugs of Keras 3's fit under MultiWorkerMirroredStrategy
    (tensorflow/tensorflow#72388, closed unfixed; its only advice is to go back to Keras 2):

    1. fit's first step averages a distributed batch with `strategy.reduce`, which this
       strategy cannot do eagerly, only to build the model, metrics and optimizer
       symbolically: build them here from one local batch, and let fit (run inside the
       strategy's scope, which still distributes it) skip that step.
    2. the logs of each step are reduced with `strategy.reduce("MEAN", v, axis=0)`, which
       fails on scalars. The logs are metric results, whose variables are synchronized on
       read across all workers, so the local reduction Keras uses for one machine gives the
       same global values: use it. (It would make `predict` local to each worker; the
       trainer never calls `predict`.)
    """
    from keras.src.backend.tensorflow import trainer as keras_tf_trainer

    with strategy.scope():
        model._symbolic_build(data_batch=next(iter(train_data)))
    model._distribute_strategy = None
    keras_tf_trainer._collective_all_reduce_multi_worker = lambda strategy: False


# ---------------------------------------------------------------------------- train
def train(config, log=print):
    """Train as `config` says; return the results dict (also written to results.json)."""
    training = config["training"]
    run_dir = os.path.join(training["checkpoint_dir"], config["run_name"])
    results_path = os.path.join(run_dir, "results.json")
    if os.path.exists(results_path):
        raise ValueError(f"Run {config['run_name']!r} is complete ({results_path} exists): "
                         "choose another run_name (--set run_name=...) to train again.")
    is_chief, worker_index = _worker_info()
    if training["precision"] != "float32":
        keras.mixed_precision.set_dtype_policy(training["precision"])

    if _is_tensorflow():
        strategy = make_strategy(training["strategy"], training["cpu_devices"])
        replicas = strategy.num_replicas_in_sync
        scope = strategy.scope
    else:
        replicas, scope = _jax_distribution(), contextlib.nullcontext
    global_batch = config["data"]["batch_size"] * replicas
    learning_rate = config["optimizer"]["lr"] * global_batch / config["optimizer"]["lr_batch_size"]

    train_data, validation_data, info = make_data(config, global_batch)
    steps_per_epoch = training["steps_per_epoch"] or max(1, info.num_examples // global_batch)
    schedule_config = config["schedule"]
    total_steps = schedule_config["iterations"] or math.ceil(
        schedule_config["epochs"] * steps_per_epoch)

    with scope():
        model = build_model(config, info)
        optimizer = make_optimizer(
            config, make_schedule(config, learning_rate, steps_per_epoch, total_steps), model)
        compile_model(model, config, optimizer)
    counts = profile_model(model)

    os.makedirs(run_dir, exist_ok=True)
    if is_chief:
        def write_config(path):
            with open(path, "w") as handle:
                handle.write(dump_config(config))
        write_atomically(os.path.join(run_dir, "config.yaml"), write_config)
    backup_dir = os.path.join(run_dir, "backup" if is_chief else f"backup_worker_{worker_index}")
    backup = ResumableBackup(
        backup_dir, save_freq=training["backup_every_steps"] or "epoch", double_checkpoint=True)
    epochs_done, steps_done = backup.resume_point()
    epochs = epochs_done + math.ceil(max(total_steps - steps_done, 1) / steps_per_epoch)
    if steps_done:
        log(f"resuming {config['run_name']} after epoch {epochs_done} "
            f"(step {steps_done} of {total_steps}) from {backup_dir}")
    nan_stop = NaNStop()
    callbacks = [StopAtStep(total_steps), nan_stop, backup]
    if config["optimizer"]["ema_decay"] > 0:
        # Validation and the checkpoints use the EMA weights.
        callbacks.append(keras.callbacks.SwapEMAWeights(swap_on_epoch=True))
    checkpoints = RunCheckpoints(run_dir, is_chief)
    progress = Progress(os.path.join(run_dir, "progress.json"), global_batch, is_chief)
    callbacks += [checkpoints, progress]
    if is_chief:
        callbacks.append(keras.callbacks.CSVLogger(os.path.join(run_dir, "log.csv"),
                                                   append=True))
        if _is_tensorflow():
            callbacks.append(keras.callbacks.TensorBoard(os.path.join(run_dir, "tensorboard")))
    interrupted = Interrupted(backup)
    interrupted.install(model)

    log(f"run {config['run_name']}: {model.name} on {info.name} "
        f"({info.num_examples} training images, {info.num_classes} classes), "
        f"{counts.params:,} params, {counts.macs / 1e6:.1f}M MACs")
    log(f"replicas {replicas} x batch {config['data']['batch_size']} = global batch "
        f"{global_batch}; lr {learning_rate:g} (= {config['optimizer']['lr']:g} x "
        f"{global_batch} / {config['optimizer']['lr_batch_size']}); {total_steps} steps = "
        f"{epochs} epochs of {steps_per_epoch}; precision {training['precision']}; "
        f"jit_compile {model.jit_compile}; backend {keras.backend.backend()}")

    if training["strategy"] == "multi_worker":
        _prepare_multi_worker_fit(model, strategy, train_data)
    with scope():
        model.fit(train_data, validation_data=validation_data, epochs=epochs,
                  steps_per_epoch=steps_per_epoch, callbacks=callbacks,
                  shuffle=False,  # the input pipeline shuffles
                  # A progress bar on a terminal, one line per epoch in a log file.
                  verbose=(1 if sys.stdout.isatty() else 2) if is_chief else 0)

    if is_chief and os.path.exists(os.path.join(run_dir, "log.csv")):
        save_curves(os.path.join(run_dir, "log.csv"), os.path.join(run_dir, "curves.png"))
    if interrupted.signal is not None:
        log(f"stopped by signal {interrupted.signal}: state saved in {backup_dir}; rerun the "
            "same command to resume.")
        sys.exit(128 + interrupted.signal)
    if nan_stop.stopped_at is not None:
        raise FloatingPointError(
            f"the loss became NaN or infinite at batch {nan_stop.stopped_at}: training "
            "stopped. Lower optimizer.lr, or check the data.")

    evaluation = model.evaluate(validation_data, verbose=0, return_dict=True)
    seconds = progress.state["train_seconds"]
    results = {
        "run_name": config["run_name"], "model": model.name, "dataset": info.name,
        "top1": float(evaluation["accuracy"]), "top5": float(evaluation["top5"]),
        "loss": float(evaluation["loss"]), "best_top1": checkpoints.best,
        "best_epoch": checkpoints.best_epoch, "params": counts.params, "macs": counts.macs,
        "steps": total_steps, "epochs": epochs, "global_batch": global_batch,
        "learning_rate": learning_rate, "schedule": config["schedule"],
        "wall_seconds": seconds,
        "images_per_second": progress.state["train_images"] / max(seconds, 1e-9),
        "replicas": replicas, "backend": keras.backend.backend(),
    }
    if is_chief:
        write_json(results_path, results)
    log(f"top-1 {results['top1']:.4f}, top-5 {results['top5']:.4f} "
        f"(best top-1 {results['best_top1']:.4f} at epoch {results['best_epoch']}); "
        f"results in {results_path}")
    return results
