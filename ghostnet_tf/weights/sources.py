"""Where published weights come from and where their converted files are cached.

Pure Python: no keras, no TensorFlow. The model files list their published weights with
these records (`PublishedWeights`, each with its `WeightSource`s); nothing else in the
library names a URL.
"""
import dataclasses
import os
from typing import Optional

# Where published checkpoints are downloaded from: the Hugging Face hub (HF_ENDPOINT, as
# huggingface_hub reads it, for a mirror) and sites of plain files, each with the variable
# that points it at a mirror: GitHub's releases and the object storage where PaddleClas
# publishes. The tests point them all at a server on 127.0.0.1.
HUB_ENDPOINT = "https://huggingface.co"
SITES = {
    "github": ("https://github.com", "GHOSTNET_TF_RELEASES_URL"),
    "paddle": ("https://paddle-imagenet-models-name.bj.bcebos.com", "GHOSTNET_TF_PADDLE_URL"),
}
# The files that need torch to read: PyTorch's pickles (.safetensors need numpy only).
_TORCH_PICKLES = (".pth", ".pth.tar", ".pt", ".bin")


def hub_endpoint():
    """The Hugging Face hub's address: HF_ENDPOINT where set, read at each call."""
    return (os.environ.get("HF_ENDPOINT") or HUB_ENDPOINT).rstrip("/")


@dataclasses.dataclass(frozen=True)
class WeightSource:
    """One place a checkpoint is published: a file of a Hugging Face hub repository
    (`hub_id`, `filename`) or a file at `release`, a path on one of the SITES (`site`; on
    GitHub "owner/repo/releases/download/tag/file"). `checkpoint_key` says which weights of a training checkpoint to read
    (`CHECKPOINT_KEYS`); `sha256` is checked where the source publishes it (the hub publishes
    it for every large file, as its ETag)."""
    hub_id: Optional[str] = None
    filename: str = "model.safetensors"
    release: Optional[str] = None
    site: str = "github"
    checkpoint_key: str = "auto"
    sha256: Optional[str] = None

    @property
    def url(self):
        """Where the file is downloaded from: `published_url`, or its mirror where the
        site's variable (HF_ENDPOINT, GHOSTNET_TF_RELEASES_URL, ...) names one."""
        if self.hub_id is not None:
            return self._at(hub_endpoint())
        default, mirror = SITES[self.site]
        return self._at(os.environ.get(mirror) or default)

    @property
    def published_url(self):
        """Where the file is published."""
        return self._at(HUB_ENDPOINT if self.hub_id is not None else SITES[self.site][0])

    def _at(self, base):
        path = (f"{self.hub_id}/resolve/main/{self.filename}" if self.hub_id is not None
                else self.release)
        return f"{base.rstrip('/')}/{path}"

    @property
    def needs_torch(self):
        """PyTorch pickles (.pth, .pth.tar, .bin) need torch to read; .safetensors and
        .pdparams files do not."""
        name = self.filename if self.hub_id is not None else self.release
        return name.endswith(_TORCH_PICKLES)


@dataclasses.dataclass(frozen=True)
class PublishedWeights:
    """A released set of weights: where it is published (the same weights at each source,
    tried in order), and its published accuracy."""
    sources: tuple  # WeightSource, the default first
    top1: float  # ImageNet top-1 (%) as published for those weights
    measured_with: object  # the EvalTransform (ghostnet_tf.data) of that top-1
    measured_by: str  # who measured it, and where it is written
    license: str  # the weights' licence, as the Hugging Face hub names it ("apache-2.0")
    classes: int = 1000  # the classes of the published classifier


def keras_cache_dir():
    """$KERAS_HOME/models (KERAS_HOME defaults to ~/.keras): where converted weights go."""
    home = os.environ.get("KERAS_HOME") or os.path.join(os.path.expanduser("~"), ".keras")
    return os.path.join(home, "models")


def pretrained_weights_path(name, tag="imagenet"):
    """Where `weights=tag` of model `name` is cached: the download converts to this file,
    and ghostnet-convert-weights writes it by default: $KERAS_HOME/models/<name>_<tag>
    .weights.h5. Any converted checkpoint of the architecture may be put there, published or
    not; a file there is read without touching the network."""
    return os.path.join(keras_cache_dir(), f"{name}_{tag}.weights.h5")
