"""Learning-rate schedules that Keras does not have."""
import keras
from keras import ops


@keras.saving.register_keras_serializable(package="ghostnet_tf")
class WarmupStepExponentialDecay(keras.optimizers.schedules.LearningRateSchedule):
    """`lr * rate ** floor(step / decay_steps)`, after a linear warm-up from `warmup_lr` to
    it over `warmup_steps`: timm's "step" scheduler with a decay rate, which the official
    GhostNetV2 and MobileNet/EfficientNet recipes use (0.973 every 2.4 epochs). The decay
    counts from step 0, warm-up included, as timm's does."""

    def __init__(self, lr, decay_steps, rate, warmup_steps=0, warmup_lr=0.0):
        self.lr, self.decay_steps, self.rate = lr, decay_steps, rate
        self.warmup_steps, self.warmup_lr = warmup_steps, warmup_lr

    def __call__(self, step):
        step = ops.cast(step, "float32")
        decayed = self.lr * ops.power(self.rate, ops.floor(step / self.decay_steps))
        if not self.warmup_steps:
            return decayed
        warming = self.warmup_lr + (self.lr - self.warmup_lr) * step / self.warmup_steps
        return ops.where(step < self.warmup_steps, warming, decayed)

    def get_config(self):
        return {"lr": self.lr, "decay_steps": self.decay_steps, "rate": self.rate,
                "warmup_steps": self.warmup_steps, "warmup_lr": self.warmup_lr}
