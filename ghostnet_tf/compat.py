"""Every use of a private Keras, TensorFlow or LiteRT API, in one place.

The library needs a few things that these packages do not expose publicly; each is wrapped
here, with what it relies on, so that an upgrade breaks in one file, and
tests/test_compat.py checks each against the installed versions. setup.cfg bounds Keras and
TensorFlow to the range these were tested with.
"""
import keras


# ---------------------------------------------------------------------------- Keras
def sublayers(layer, recursive=False):
    """The layers tracked inside `layer` (a model or a layer with sublayers), in tracking
    order; Keras has no public way to list the sublayers of a custom layer."""
    return list(layer._flatten_layers(include_self=False, recursive=recursive))


def ema_variables(optimizer):
    """The optimizer's exponential moving averages of the model variables (use_ema=True)."""
    return list(optimizer._model_variables_moving_average)


class BackupAndRestoreWithHooks(keras.callbacks.BackupAndRestore):
    """Keras' BackupAndRestore with public handles on what it keeps private:
    `metadata_paths` and `weights_paths` (its JSON state and weights files, each with the
    previous copy kept with double_checkpoint=True), `position` (epochs done and batch of the
    current epoch), `on_backup_saved()`, called after every save, and `save_now()`."""

    @property
    def metadata_paths(self):
        return self._training_metadata_path, self._prev_training_metadata_path

    @property
    def weights_paths(self):
        """The weights (and optimizer state) file, and the previous copy."""
        return self._weights_path, self._prev_weights_path

    @property
    def position(self):
        return self._current_epoch, self._last_batch_seen

    def on_backup_saved(self):
        """Subclasses add their own state here."""

    def save_now(self):
        """Save the state at once (Keras saves at epoch ends, or every save_freq batches)."""
        self._save_model()

    def _save_model(self):
        super()._save_model()
        self.on_backup_saved()


def prepare_multi_worker_fit(model, strategy, data_batch):
    """Work around two bugs of Keras 3's fit under MultiWorkerMirroredStrategy
    (tensorflow/tensorflow#72388, closed unfixed; its only advice is to go back to Keras 2).

    1. fit's first step averages a distributed batch with `strategy.reduce`, which this
       strategy cannot do eagerly, only to build the model, metrics and optimizer
       symbolically: build them here from one local batch, and let fit (run inside the
       strategy's scope, which still distributes it) skip that step.
    2. the logs of each step are reduced with `strategy.reduce("MEAN", v, axis=0)`, which
       fails on scalars. The logs are metric results, whose variables are synchronized on
       read across all workers, so the local reduction Keras uses for one machine gives the
       same global values: use it. (It would make `predict` local to each worker; the
       trainer never calls `predict`.)

    Returns a function that undoes the second change (the first belongs to `model` only).
    """
    from keras.src.backend.tensorflow import trainer as keras_tf_trainer

    with strategy.scope():
        model._symbolic_build(data_batch=data_batch)
    model._distribute_strategy = None
    original = keras_tf_trainer._collective_all_reduce_multi_worker
    keras_tf_trainer._collective_all_reduce_multi_worker = lambda strategy: False

    def restore():
        keras_tf_trainer._collective_all_reduce_multi_worker = original
    return restore


# ---------------------------------------------------------------------------- TensorFlow
def disable_per_channel_quantization(converter):
    """One weight scale per tensor in a full-int8 conversion (the converter's default is one
    per output channel); TFLiteConverter has only a private switch for it."""
    converter._experimental_disable_per_channel = True


# ---------------------------------------------------------------------------- LiteRT
def tflite_ops(interpreter):
    """The ops of a LiteRT interpreter's graph, in execution order, each a dict with
    "op_name", "inputs" and "outputs" (tensor indices); the public API lists tensors only."""
    return interpreter._get_ops_details()


def node_names(interpreter):
    """Names of the nodes of a LiteRT interpreter's graph: its ops and, after
    `allocate_tensors()`, one "DELEGATE" node for each piece of the graph that XNNPACK took
    (a graph XNNPACK runs whole has exactly one)."""
    native = interpreter._interpreter
    return [native.NodeName(index) for index in range(native.NumNodes())]
