"""Training: the YAML config (no TensorFlow) and the Keras fit trainer."""
from ghostnet_tf.training.config import ConfigError, load_config
