"""train.py: config errors, schedules, tf.distribute, resuming after a crash."""
import json
import os
import signal

import keras
import numpy as np
import pytest

from ghostnet_tf.cli import train as train_cli
from ghostnet_tf.compat import sublayers
from ghostnet_tf.models import get_model, reparameterize
from ghostnet_tf.profile import profile_model
from ghostnet_tf.training.config import ConfigError, load_config
from ghostnet_tf.training.trainer import make_optimizer, make_schedule, train
from tests.internals import ema_variables
from tests.runs import (REPO, free_port, read_log, run_train, save_colour_teacher,
                        signal_after_first_epoch, tiny_run)

CONFIGS = os.path.join(REPO, "configs")


# ---------------------------------------------------------------------------- config
def test_the_schema_is_the_one_list_of_keys():
    from ghostnet_tf.models.registry import OPTIONS
    from ghostnet_tf.training.config import flatten
    from ghostnet_tf.training.schema import DEFAULTS, FREE_KEYS, MODEL_OPTIONS, keys

    assert list(flatten(DEFAULTS)) == list(keys())
    assert all(field.metadata["help"] for field in keys().values())
    assert set(MODEL_OPTIONS) <= set(OPTIONS)  # passed to the constructors as they are
    assert "data.data_dir" in FREE_KEYS and "optimizer.lr" not in FREE_KEYS


def test_a_run_folder_of_version_0_2_0_resumes_with_its_recipe():
    # config.yaml as version 0.2.0 wrote it for configs/fashion_mnist_ghost_resnet56.yaml.
    from ghostnet_tf.training.config import parse_yaml, validate
    from ghostnet_tf.training.run_folder import check_resumed_config

    with open(os.path.join(REPO, "tests", "data", "config_v0.2.0.yaml")) as file:
        saved = parse_yaml(file)
    assert validate(load_config(None, [f"{section}.{key}={json.dumps(value)}"
                                       for section, values in saved.items()
                                       if isinstance(values, dict)
                                       for key, value in values.items()]
                                + [f"run_name={saved['run_name']}", f"seed={saved['seed']}"]))
    recipe = os.path.join(CONFIGS, "fashion_mnist_ghost_resnet56.yaml")
    assert check_resumed_config(load_config(recipe), saved) == []
    with pytest.raises(ConfigError, match=r"optimizer.lr: 0.1 -> 0.2.*resume_changes="
                                          r"\[optimizer.lr\]"):
        check_resumed_config(load_config(recipe, ["optimizer.lr=0.2"]), saved)
    # A free key (the schema's `free`) may change without resume_changes.
    assert check_resumed_config(load_config(recipe, ["data.data_dir=/elsewhere"]), saved) == []


def test_every_recipe_loads():
    recipes = sorted(f for f in os.listdir(CONFIGS) if f.endswith(".yaml"))
    assert len(recipes) >= 10
    for recipe in recipes:
        config = load_config(os.path.join(CONFIGS, recipe))
        assert config["run_name"] == recipe[:-5]
    cifar = load_config(os.path.join(CONFIGS, "cifar10_ghost_resnet56.yaml"))
    assert cifar["schedule"]["iterations"] == 64000
    assert cifar["schedule"]["boundaries"] == [32000, 48000]
    assert cifar["optimizer"]["weight_decay"] == 1e-4


@pytest.mark.parametrize("override, message", [
    ("optimizer.learning_rate=0.1", "unknown key optimizer.learning_rate; valid keys: "
                                    "optimizer.name, optimizer.lr"),
    ("traning.strategy=auto", "unknown key 'traning'"),
    ("optimizer.name=adam", r"optimizer.name must be one of \['sgd', 'rmsprop', 'adamw'\]"),
    ("optimizer.lr=-1", "optimizer.lr must be positive"),
    ("data.batch_size=12.5", "data.batch_size must be an integer"),
    ("schedule.boundaries=[48000, 32000]", "rising list"),
    ("schedule.epochs=10", "exactly one of schedule.iterations and schedule.epochs"),
    ("training.precision=fp8", "training.precision must be one of"),
    ("optimizer.lr", "expected section.key=value"),
    ("model.weights=ghostnet.onnx", r"model.weights must be a published tag \(\"imagenet\"\), a "
                                    r"\.keras or \.weights\.h5 file, or a checkpoint: "
                                    r"PyTorch's .* or PaddleClas's \(\.pdparams\)"),
    ("model.freeze_backbone=maybe", "model.freeze_backbone must be true or false"),
    ("optimizer.nesterov=3", "optimizer.nesterov must be true or false, got 3"),
    ("data.min_scale=1.5", r"data.min_scale must be in \(0, 1\], got 1.5"),
    ("model.dw_size=4", "model.dw_size must be odd, got 4"),
    ("training.jit_compile=1", r"training.jit_compile must be one of \['auto', True, False\]"),
])
def test_bad_keys_and_values_fail_fast(override, message):
    with pytest.raises(ConfigError, match=message):
        load_config(os.path.join(CONFIGS, "cifar10_resnet56.yaml"), [override])


def test_exponent_floats_parse_as_numbers():
    config = load_config(None, ["run_name=x", "optimizer.weight_decay=4e-5", "optimizer.lr=1E-3",
                                "schedule.iterations=10"])
    assert config["optimizer"]["weight_decay"] == 4e-5 and config["optimizer"]["lr"] == 1e-3


def test_cli_reports_config_errors_before_training(tmp_path, capsys):
    assert train_cli.main(["--config", str(tmp_path / "missing.yaml")]) == 2
    assert "no such file" in capsys.readouterr().err
    assert train_cli.main(["--config", os.path.join(CONFIGS, "cifar10_resnet56.yaml"),
                           "--set", "model.depth=56"]) == 2
    assert "valid keys: model.name" in capsys.readouterr().err
    assert train_cli.main(["--config", os.path.join(CONFIGS, "cifar10_resnet56.yaml"),
                           "--set", "optimizer.lr=0.2", "--print-config"]) == 0
    assert "lr: 0.2" in capsys.readouterr().out


def test_step_schedule_changes_the_lr_at_the_right_iterations():
    config = load_config(os.path.join(CONFIGS, "cifar10_resnet56.yaml"))
    schedule = make_schedule(config, 0.1, steps_per_epoch=390, total_steps=64000)
    lr = lambda step: float(schedule(step))  # noqa: E731
    assert lr(0) == pytest.approx(0.1) and lr(31999) == pytest.approx(0.1)
    assert lr(32001) == pytest.approx(0.01) and lr(47999) == pytest.approx(0.01)
    assert lr(48001) == pytest.approx(0.001) and lr(63999) == pytest.approx(0.001)


def test_cosine_schedule_warms_up_then_decays():
    config = load_config(os.path.join(CONFIGS, "imagenet_ghostnet_100.yaml"))
    schedule = make_schedule(config, 0.4, steps_per_epoch=100, total_steps=40000)
    assert float(schedule(0)) == pytest.approx(0.0)
    assert float(schedule(250)) == pytest.approx(0.2, rel=1e-3)  # half-way through warm-up
    assert float(schedule(500)) == pytest.approx(0.4, rel=1e-3)
    assert float(schedule(40000)) == pytest.approx(0.0, abs=1e-6)


def test_ghostnetv2_recipe_decays_by_0973_every_2_4_epochs_with_tf_rmsprop():
    config = load_config(os.path.join(CONFIGS, "imagenet_ghostnetv2_100.yaml"))
    schedule = make_schedule(config, 0.064, steps_per_epoch=100, total_steps=45000)
    lr = lambda step: float(schedule(step))  # noqa: E731
    assert lr(0) == pytest.approx(0.0) and lr(150) == pytest.approx(0.032, rel=1e-4)
    # Decay counted from step 0, warm-up included (timm): one decay by the end of warm-up.
    assert lr(300) == pytest.approx(0.064 * 0.973 ** 1, rel=1e-5)
    assert lr(479) == pytest.approx(0.064 * 0.973 ** 1, rel=1e-5)
    assert lr(480) == pytest.approx(0.064 * 0.973 ** 2, rel=1e-5)
    assert lr(44999) == pytest.approx(0.064 * 0.973 ** 187, rel=1e-4)
    restored = keras.optimizers.schedules.deserialize(keras.optimizers.schedules.serialize(
        schedule))
    assert float(restored(1000)) == pytest.approx(lr(1000))
    model = keras.Sequential([keras.Input((2,)), keras.layers.Dense(1)])
    optimizer = make_optimizer(config, schedule, model)
    assert isinstance(optimizer, keras.optimizers.RMSprop)
    assert optimizer.epsilon == 1e-3 and optimizer.momentum == 0.9 and optimizer.use_ema
    # epsilon inside the square root (TensorFlow's RMSprop): a zero gradient history
    # gives steps of lr * g / sqrt(eps), not lr * g / eps.
    variable = keras.Variable([0.0])
    plain = keras.optimizers.RMSprop(1.0, rho=0.0, epsilon=1e-3)
    plain.apply_gradients([(keras.ops.convert_to_tensor([1e-3]), variable)])
    assert float(variable[0]) == pytest.approx(-1e-3 / np.sqrt(1e-6 + 1e-3), rel=1e-4)


def test_schedule_follows_the_optimizer_steps_in_a_real_run(tmp_path):
    config = load_config(None, tiny_run(
        tmp_path, "schedule.iterations=6", "schedule.boundaries=[2, 4]",
        "training.steps_per_epoch=3", "optimizer.weight_decay=0"))
    results = train(config, log=lambda *_: None)
    assert results["steps"] == 6 and results["epochs"] == 2
    model = keras.saving.load_model(tmp_path / "runs" / "tiny" / "last.keras")
    assert int(model.optimizer.iterations) == 6
    # lr 0.05 at a global batch of 128, scaled to 32, divided by 10 twice.
    assert float(model.optimizer.learning_rate) == pytest.approx(0.05 * 32 / 128 * 0.01)


def test_weight_ema_is_what_the_run_ends_with(tmp_path):
    config = load_config(None, tiny_run(
        tmp_path, "optimizer.ema_decay=0.5", "schedule.iterations=6",
        "schedule.boundaries=[4]", "training.steps_per_epoch=3"))
    results = train(config, log=lambda *_: None)
    model = keras.saving.load_model(tmp_path / "runs" / "tiny" / "last.keras")
    assert model.optimizer.use_ema and results["steps"] == 6
    # At the end the EMA is swapped into the model and copied into the optimizer's averages;
    # without the swap the model would keep its raw weights, which differ from the averages.
    average = next(v for v in ema_variables(model.optimizer)
                   if v.path.endswith("fc_kernel_average"))
    np.testing.assert_allclose(keras.ops.convert_to_numpy(model.get_layer("fc").kernel),
                               keras.ops.convert_to_numpy(average), rtol=1e-6)


def test_sync_bn_and_mixed_precision_options(tmp_path):
    from ghostnet_tf.data.files import DatasetInfo
    from ghostnet_tf.training.trainer import build_model, compile_model, make_optimizer

    info = DatasetInfo("cifar10", "train", 10, tuple("abcdefghij"), 100, (32, 32, 3))
    config = load_config(None, ["run_name=x", "schedule.iterations=10",
                                "model.name=ghost_resnet20", "model.sync_bn=true"])
    model = build_model(config, info)
    norms = [l for l in sublayers(model, recursive=True)
             if isinstance(l, keras.layers.BatchNormalization)]
    assert norms and all(layer.synchronized for layer in norms)
    keras.config.set_dtype_policy("mixed_float16")
    config["model"]["sync_bn"] = False
    model = build_model(config, info)
    compile_model(model, config, make_optimizer(config, 0.1, model))
    assert model.get_layer("stem_conv").compute_dtype == "float16"
    assert model.output.dtype == "float32"  # the predictions layer stays float32
    assert isinstance(model.optimizer, keras.optimizers.LossScaleOptimizer)


# ---------------------------------------------------------------------------- weight decay
def _one_step_of_weight_decay(optimizer_name, lr=0.5, weight_decay=0.1):
    """{variable path: (before, after)} of one optimizer step on a loss whose gradient is
    zero: every change is the weight decay's."""
    from ghostnet_tf.layers import GhostModule
    from ghostnet_tf.training.trainer import make_optimizer

    config = load_config(None, ["run_name=x", "schedule.iterations=10",
                                f"optimizer.name={optimizer_name}",
                                f"optimizer.weight_decay={weight_decay}"])
    inputs = keras.Input((6, 6, 3))
    x = GhostModule(4, use_bias=True, name="ghost")(inputs)  # kernels, biases and BN
    x = keras.layers.GlobalAveragePooling2D()(x)
    model = keras.Model(inputs, keras.layers.Dense(2, name="fc")(x))
    for variable in model.trainable_variables:  # no zeros, so that every decay shows
        variable.assign(np.random.default_rng(0).uniform(0.5, 1.5, variable.shape))
    before = {v.path: keras.ops.convert_to_numpy(v) for v in model.trainable_variables}
    model.compile(make_optimizer(config, lr, model),
                  loss=lambda y_true, y_pred: 0.0 * keras.ops.sum(y_pred))
    model.train_on_batch(np.ones((2, 6, 6, 3), "float32"), np.zeros((2, 2), "float32"))
    return {v.path: (before[v.path], keras.ops.convert_to_numpy(v))
            for v in model.trainable_variables}


def _kernels_and_the_rest(steps):
    kernels = {p: ba for p, ba in steps.items() if p.endswith("/kernel")}
    others = {p: ba for p, ba in steps.items() if p not in kernels}
    # The depthwise (cheap) convolution's kernel is decayed like the others.
    assert set(kernels) == {"ghost/primary_conv/kernel", "ghost/cheap_conv/kernel",
                            "fc/kernel"}
    assert {p.split("/")[-1] for p in others} == {"bias", "gamma", "beta"}
    return kernels, others


@pytest.mark.parametrize("optimizer_name", ["sgd", "adamw"])
def test_one_step_decays_kernels_by_lr_wd_w_and_nothing_else(optimizer_name):
    # SGD (momentum 0.9, L2 on the gradient: the first step is -lr * wd * w) and AdamW
    # (decoupled: w -= lr * wd * w, and Adam's own step of a zero gradient is zero).
    kernels, others = _kernels_and_the_rest(_one_step_of_weight_decay(optimizer_name))
    for path, (before, after) in kernels.items():
        np.testing.assert_allclose(after - before, -0.5 * 0.1 * before, rtol=1e-5, err_msg=path)
    for path, (before, after) in others.items():
        np.testing.assert_array_equal(after, before, err_msg=path)


def test_rmsprop_decays_kernels_through_the_gradient_and_nothing_else():
    kernels, others = _kernels_and_the_rest(_one_step_of_weight_decay("rmsprop"))
    rho, epsilon = 0.9, 1e-7  # Keras' RMSprop defaults
    for path, (before, after) in kernels.items():
        gradient = 0.1 * before  # the L2 term's gradient, wd * w
        expected = -0.5 * gradient / np.sqrt((1 - rho) * gradient ** 2 + epsilon)
        np.testing.assert_allclose(after - before, expected, rtol=1e-4, err_msg=path)
    for path, (before, after) in others.items():
        np.testing.assert_array_equal(after, before, err_msg=path)


# ---------------------------------------------------------------------------- training
@pytest.mark.slow
def test_mirrored_strategy_on_two_cpus_learns(tmp_path):
    # A process of its own: two MirroredStrategies in one process share collective keys.
    # Distilled from a teacher, which runs on every replica.
    save_colour_teacher(tmp_path / "teacher.keras")
    overrides = tiny_run(
        tmp_path, "training.strategy=mirrored", "training.cpu_devices=2",
        "schedule.iterations=40", "schedule.boundaries=[30]", "training.steps_per_epoch=5",
        "data.batch_size=16", f"training.teacher={tmp_path / 'teacher.keras'}",
        "training.distillation_weight=0.5")
    process = run_train(overrides)
    output, _ = process.communicate(timeout=600)
    assert process.returncode == 0, output
    assert "distilled from" in output
    run = tmp_path / "runs" / "tiny"
    results = json.loads((run / "results.json").read_text())
    assert results["replicas"] == 2 and results["global_batch"] == 32
    assert "replicas 2 x batch 16 = global batch 32" in output
    losses = [float(row["loss"]) for row in read_log(run)]
    assert len(losses) == 8 and losses[-1] < losses[0]
    assert results["top1"] > 0.5  # 4 classes: chance is 0.25
    for name in ("config.yaml", "best.keras", "last.keras", "best.json", "curves.png",
                 "log.csv", "tensorboard"):
        assert (run / name).exists(), name
    assert not (run / "backup").exists()  # a finished run leaves no resume state
    expected = profile_model(get_model("ghost_resnet20"))
    assert (results["params"], results["macs"]) == (expected.params, expected.macs)
    again = run_train(overrides)
    output, _ = again.communicate(timeout=600)
    assert again.returncode == 2 and "is complete" in output


def test_the_results_loss_is_the_loss_eval_reports(tmp_path):
    from ghostnet_tf.data.source import DataSource
    from ghostnet_tf.evaluation import evaluate

    overrides = tiny_run(tmp_path, "schedule.iterations=4", "schedule.boundaries=[2]",
                         "training.steps_per_epoch=2", "training.label_smoothing=0.1")
    results = train(load_config(None, overrides), log=lambda *_: None)
    run = tmp_path / "runs" / "tiny"
    report = evaluate(run / "last.keras", DataSource("cifar10", tmp_path / "data"),
                      output=tmp_path / "eval.json")[0]
    assert results["loss"] == pytest.approx(report.loss, abs=1e-4)
    # The objective adds label smoothing and the weight decay's L2 penalty.
    assert results["objective_loss"] > results["loss"] + 1e-3
    # The run's class names are beside its checkpoints, for eval.py, predict.py, export.py.
    assert (run / "labels.txt").read_text().splitlines()[:2] == ["airplane", "automobile"]


@pytest.mark.slow
def test_sigkill_during_epoch_two_resumes_at_epoch_two(tmp_path):
    overrides = tiny_run(tmp_path, "schedule.iterations=120", "schedule.boundaries=[90]",
                         "training.steps_per_epoch=30", "data.batch_size=16",
                         per_batch=80)
    run = tmp_path / "runs" / "tiny"
    signal_after_first_epoch(overrides, run, signal.SIGKILL)
    assert not (run / "results.json").exists()
    saved = json.loads((run / "backup" / "training_metadata.json").read_text())
    # Killed during epoch 2: the state of epoch 1's end, whose weights file it names.
    assert (saved["epoch"], saved["batch"], saved["iterations"]) == (1, 0, 30)
    assert (run / "backup" / saved["weights"]).is_file()
    resumed = run_train(overrides)
    output, _ = resumed.communicate(timeout=600)
    assert resumed.returncode == 0, output
    assert "resuming tiny after epoch 1 (step 30 of 120)" in output
    assert "Epoch 2/4" in output and "Epoch 1/4" not in output
    epochs = [int(row["epoch"]) for row in read_log(run)]
    assert epochs == [0, 1, 2, 3]
    assert json.loads((run / "results.json").read_text())["steps"] == 120


@pytest.mark.slow
def test_sigterm_saves_the_state_and_exits_cleanly(tmp_path):
    overrides = tiny_run(tmp_path, "schedule.iterations=400", "schedule.boundaries=[300]",
                         "training.steps_per_epoch=10", "data.batch_size=16", per_batch=80)
    run = tmp_path / "runs" / "tiny"
    returncode, output = signal_after_first_epoch(overrides, run, signal.SIGTERM)
    assert returncode == 128 + signal.SIGTERM, output
    assert "rerun the same command to resume" in output and "Traceback" not in output
    saved = json.loads((run / "backup" / "training_metadata.json").read_text())
    assert f"at step {saved['iterations']}: state saved in" in output
    assert (run / "backup" / saved["weights"]).is_file()


def test_nan_loss_stops_with_a_message(tmp_path, capsys):
    overrides = tiny_run(tmp_path, "optimizer.lr=1e12", "schedule.iterations=30",
                         "schedule.boundaries=[20]", "training.steps_per_epoch=30")
    assert train_cli.main(sum((["--set", o] for o in overrides), [])) == 3
    assert "NaN" in capsys.readouterr().err


def test_train_leaves_the_process_as_it_found_it(tmp_path):
    handlers = {signum: signal.getsignal(signum) for signum in (signal.SIGINT, signal.SIGTERM)}
    short = ["schedule.iterations=4", "schedule.boundaries=[2]", "training.steps_per_epoch=2",
             "training.precision=mixed_bfloat16"]
    results = train(load_config(None, tiny_run(tmp_path, *short)), log=lambda *_: None)
    assert results["steps"] == 4
    model = keras.saving.load_model(tmp_path / "runs" / "tiny" / "last.keras")
    assert model.get_layer("stem_conv").compute_dtype == "bfloat16"  # trained mixed
    assert keras.config.dtype_policy().name == "float32"
    assert {s: signal.getsignal(s) for s in handlers} == handlers
    # The same when training fails.
    failing = load_config(None, tiny_run(tmp_path, *short, "run_name=nan", "optimizer.lr=1e12"))
    with pytest.raises(FloatingPointError, match="NaN or infinite"):
        train(failing, log=lambda *_: None)
    assert keras.config.dtype_policy().name == "float32"
    assert {s: signal.getsignal(s) for s in handlers} == handlers


@pytest.mark.slow
def test_multi_worker_mirrored_strategy_on_two_processes(tmp_path):
    ports = [free_port(), free_port()]
    overrides = tiny_run(tmp_path, "training.strategy=multi_worker", "schedule.iterations=8",
                         "schedule.boundaries=[6]", "training.steps_per_epoch=4",
                         "data.batch_size=16")
    workers = []
    for index in range(2):
        tf_config = {"cluster": {"worker": [f"localhost:{port}" for port in ports]},
                     "task": {"type": "worker", "index": index}}
        workers.append(run_train(overrides, env={"TF_CONFIG": json.dumps(tf_config)}))
    outputs = [worker.communicate(timeout=600)[0] for worker in workers]
    for worker, output in zip(workers, outputs):
        assert worker.returncode == 0, output
    finals = [[line for line in output.splitlines() if line.startswith("top-1")]
              for output in outputs]
    assert finals[0] and finals[0][0].split(";")[0] == finals[1][0].split(";")[0]
    assert "replicas 2 x batch 16 = global batch 32" in outputs[0]
    run = tmp_path / "runs" / "tiny"
    assert (run / "results.json").exists() and (run / "last.keras").exists()
    assert json.loads((run / "results.json").read_text())["replicas"] == 2


@pytest.mark.slow
def test_the_same_command_trains_on_the_jax_backend(tmp_path):
    get_model("resnet20").save(tmp_path / "teacher.keras")  # distillation on JAX too
    overrides = tiny_run(tmp_path, "schedule.iterations=6", "schedule.boundaries=[4]",
                         "training.steps_per_epoch=3", "training.label_smoothing=0.1",
                         f"training.teacher={tmp_path / 'teacher.keras'}")
    process = run_train(overrides, env={"KERAS_BACKEND": "jax", "JAX_PLATFORMS": "cpu"})
    output, _ = process.communicate(timeout=600)
    assert process.returncode == 0, output
    assert "backend jax" in output and "distilled from" in output
    run = tmp_path / "runs" / "tiny"
    results = json.loads((run / "results.json").read_text())
    assert results["backend"] == "jax" and results["steps"] == 6
    # The reported top-1 is that of the final weights on the test split, recomputed here
    # on the TensorFlow backend from last.keras.
    from ghostnet_tf.data import load_arrays
    images, labels, _ = load_arrays("cifar10", "test", tmp_path / "data")
    model = keras.saving.load_model(run / "last.keras", compile=False)
    predicted = keras.ops.convert_to_numpy(model(images.astype("float32"))).argmax(axis=1)
    assert results["top1"] == pytest.approx(float((predicted == labels).mean()), abs=1e-6)


def test_fine_tuning_recipe_frozen_backbone_then_all(tmp_path, monkeypatch):
    """The two phases of configs/finetune_ghostnet_100_*.yaml, on a folder of class subfolders
    and a small GhostNet: phase 1 trains only the classifier (the backbone, BN statistics
    included, stays as loaded), phase 2 starts from phase 1's checkpoint and trains it all."""
    from ghostnet_tf.models import GhostNet
    from ghostnet_tf.weights import pretrained_weights_path
    from tests.datasets import write_image_folder
    # "ImageNet" weights in the cache that weights="imagenet" reads.
    monkeypatch.setenv("KERAS_HOME", str(tmp_path / "keras"))
    pretrained = GhostNet(width=0.5, input_shape=(64, 64, 3), classes=1000)
    os.makedirs(os.path.dirname(pretrained_weights_path("ghostnet_050")))
    pretrained.save_weights(pretrained_weights_path("ghostnet_050"))
    for split in ("train", "val"):
        write_image_folder(tmp_path / "images", classes=("cat", "dog", "fox"), per_class=8,
                           split=split)
    common = [f"data.data_dir={tmp_path / 'images'}", "model.name=ghostnet_050",
              "data.image_size=64", "data.batch_size=8", "schedule.epochs=2",
              f"training.checkpoint_dir={tmp_path / 'runs'}"]
    head = load_config(os.path.join(CONFIGS, "finetune_ghostnet_100_head.yaml"),
                       common + ["run_name=head"])
    assert head["model"]["weights"] == "imagenet"
    train(head, log=lambda *_: None)
    phase1 = keras.saving.load_model(tmp_path / "runs" / "head" / "last.keras", compile=False)
    for name in ("conv_stem", "bn1", "blocks_6_3", "conv_head"):
        for before, after in zip(pretrained.get_layer(name).weights,
                                 phase1.get_layer(name).weights):
            np.testing.assert_array_equal(keras.ops.convert_to_numpy(before),
                                          keras.ops.convert_to_numpy(after))
    assert phase1.get_layer("classifier").kernel.shape == (1280, 3)

    full = load_config(os.path.join(CONFIGS, "finetune_ghostnet_100_full.yaml"),
                       common + [f"model.weights={tmp_path / 'runs' / 'head' / 'last.keras'}",
                                 "run_name=full", "schedule.epochs=1"])
    from ghostnet_tf.data.files import DatasetInfo
    from ghostnet_tf.training.trainer import build_model
    info = DatasetInfo("folder", "train", 3, ("cat", "dog", "fox"), 24, (64, 64, 3))
    start = build_model(full, info)
    np.testing.assert_array_equal(keras.ops.convert_to_numpy(start.get_layer("classifier").kernel),
                                  keras.ops.convert_to_numpy(phase1.get_layer("classifier").kernel))
    assert len(start.trainable_weights) == len(pretrained.trainable_weights)
    train(full, log=lambda *_: None)
    phase2 = keras.saving.load_model(tmp_path / "runs" / "full" / "last.keras", compile=False)
    assert not np.array_equal(keras.ops.convert_to_numpy(phase2.get_layer("conv_stem").kernel),
                              keras.ops.convert_to_numpy(pretrained.get_layer("conv_stem").kernel))


# ---------------------------------------------------------------------------- distillation
def test_distillation_loss_weighs_the_label_loss_and_the_cross_entropy_to_the_teacher():
    from ghostnet_tf.training.distillation import Distiller

    keras.utils.set_random_seed(1)  # initial weights whose probabilities stay above 1e-4
    student = get_model("resnet20", input_shape=(16, 16, 3), classes=4)
    teacher = get_model("ghost_resnet20", input_shape=(16, 16, 3), classes=4)
    distiller = Distiller(student, teacher, weight=0.7, temperature=2.0)
    distiller.compile(loss=keras.losses.CategoricalCrossentropy(label_smoothing=0.1))
    # Images near mid-gray, where untrained models give no probability near 0 (where Keras'
    # cross-entropy and this reference would each handle the log their own way).
    images = np.random.default_rng(0).uniform(112, 144, (3, 16, 16, 3)).astype("float32")
    labels = np.eye(4, dtype="float32")[[0, 2, 3]]
    student_p, teacher_p = (keras.ops.convert_to_numpy(model(images, training=False))
                            for model in (student, teacher))
    assert min(student_p.min(), teacher_p.min()) > 1e-4
    loss = float(distiller.compute_loss(images, labels, student(images, training=False),
                                        training=True))

    def softmax_at(p, t):
        e = np.exp(np.log(p) / t)
        return e / e.sum(-1, keepdims=True)
    smoothed = labels * 0.9 + 0.1 / 4
    label_loss = -(smoothed * np.log(student_p)).sum(-1).mean()
    kd = -(softmax_at(teacher_p, 2) * np.log(softmax_at(student_p, 2))).sum(-1).mean() * 4
    # By default the weights sum to 1: (1 - a) CE + a T^2 KD.
    assert loss == pytest.approx(0.3 * label_loss + 0.7 * kd, rel=1e-4)
    # GhostNetV3's recipe: both terms at weight 1.
    summed = Distiller(student, teacher, weight=1.0, temperature=2.0, label_weight=1.0)
    summed.compile(loss=keras.losses.CategoricalCrossentropy(label_smoothing=0.1))
    assert float(summed.compute_loss(images, labels, student(images, training=False),
                                     training=True)) == pytest.approx(label_loss + kd, rel=1e-4)
    # Validation reports the student's own loss.
    assert float(distiller.compute_loss(images, labels, student(images, training=False),
                                        training=False)) == pytest.approx(label_loss, rel=1e-4)


def test_distilled_run_saves_the_student_and_refuses_a_mismatched_teacher(tmp_path):
    teacher_path = tmp_path / "teacher.keras"
    get_model("resnet20").save(teacher_path)
    # GhostNetV3's recipe: re-parameterizable branches and a teacher.
    overrides = tiny_run(tmp_path, "schedule.iterations=6", "schedule.boundaries=[4]",
                         f"training.teacher={teacher_path}", "training.steps_per_epoch=3",
                         "training.label_smoothing=0.1", "model.version=3")
    results = train(load_config(os.path.join(CONFIGS, "cifar10_resnet56.yaml"), overrides))
    run = tmp_path / "runs" / "tiny"
    assert results["model"] == "ghost_resnet20"
    saved = keras.saving.load_model(run / "last.keras")
    assert saved.name == "ghost_resnet20"
    train_form = profile_model(get_model("ghost_resnet20", version=3))
    assert (results["params"], results["macs"]) == (train_form.params, train_form.macs)
    assert profile_model(saved).params == train_form.params
    # Evaluated and counted folded, as it ships.
    folded = profile_model(reparameterize(saved))
    assert (results["deploy_params"], results["deploy_macs"]) == (folded.params, folded.macs)
    assert folded.params < train_form.params
    log = read_log(run)
    assert len(log) == 2 and all(float(row["loss"]) > 0 for row in log)
    assert results["top1"] == pytest.approx(float(log[-1]["val_accuracy"]), abs=1e-6)

    wrong = tmp_path / "teacher4.keras"
    get_model("resnet20", classes=4).save(wrong)
    with pytest.raises(ConfigError, match=r"training.teacher .* predicts 4 classes; the "
                                          r"student ghost_resnet20 has 10"):
        train(load_config(os.path.join(CONFIGS, "cifar10_resnet56.yaml"), tiny_run(
            tmp_path, "run_name=wrong", f"training.teacher={wrong}",
            "schedule.iterations=2")))
    with pytest.raises(ConfigError, match="training.teacher nowhere.keras: no such file"):
        train(load_config(os.path.join(CONFIGS, "cifar10_resnet56.yaml"), tiny_run(
            tmp_path, "run_name=missing", "training.teacher=nowhere.keras",
            "schedule.iterations=2")))
