"""Published weights on first use: download, verify, convert and cache.

`weights_file(architecture, tag)` is what `weights="imagenet"` reads: the converted
`.weights.h5` in $KERAS_HOME/models, made on first use from the checkpoint that the
architecture's published weights name.
huggingface_hub downloads hub files (its cache, resumed downloads, HF_ENDPOINT, HF_HUB_OFFLINE,
a progress bar) and `keras.utils.get_file` release assets (a progress bar, a hash check where
one is published). Conversion is by key name (`official.py`). A download that is cut,
a page that is not a checkpoint, or a checkpoint that does not fit the architecture is removed
and never becomes a cache file; a lock lets one process convert while others wait for it.
"""
import contextlib
import os
import re
import sys
import tempfile
import urllib.parse

from ghostnet_tf.atomic import sha256_of
from ghostnet_tf.checks import ArgumentError, first_line
from ghostnet_tf.network import is_online
from ghostnet_tf.weights.sources import hub_endpoint, pretrained_weights_path

_SHA256 = re.compile(r"^[0-9a-f]{64}$")


class DownloadError(OSError):
    """A source could not be downloaded (no network, a refused or cut connection, a 404):
    the next source is tried."""


class BadDownload(ValueError):
    """A downloaded file is not the checkpoint it should be (a wrong hash, an HTML page,
    another architecture): it is removed and the download fails."""


def weights_file(architecture, tag="imagenet"):
    """The path of the converted weights `tag` of `architecture` (a resolve.Architecture):
    the cache file when it exists (published or converted by hand), else the published
    checkpoint downloaded and converted into it (later calls read the cache and touch no
    network)."""
    name = architecture.name
    path = pretrained_weights_path(name, tag)
    if os.path.exists(path):
        return path
    published = architecture.published.get(tag)
    if published is None:
        tags = ", ".join(f'"{tag}"' for tag in architecture.published)
        raise ArgumentError(
            "weights", f'"{tag}": {name} has no published weights of that name (published: '
                       f"{tags or 'none'}) and {path} does not exist. Pass None, a published "
                       "tag, a checkpoint file (.safetensors, .pth, .pth.tar, .bin, "
                       f".weights.h5), or convert one: ghostnet-convert-weights SRC --arch "
                       f"{name} -o {path}.")
    from filelock import FileLock

    # The lock files stay (filelock keeps them on purpose): in a folder of their own, as in
    # huggingface_hub's cache, not among the weights.
    locks = os.path.join(os.path.dirname(path), ".locks")
    os.makedirs(locks, exist_ok=True)
    with FileLock(os.path.join(locks, f"{os.path.basename(path)}.lock")):
        if not os.path.exists(path):  # another process may have made it while we waited
            _download_and_convert(architecture, tag, published, path)
    return path


def _download_and_convert(architecture, tag, published, path):
    name = architecture.name
    failures = []
    for source in published.sources:
        if source.needs_torch and not _torch_installed():
            failures.append(f"{source.url} (a PyTorch pickle: needs torch, pip install "
                            '"ghostnet-tf[torch]")')
            continue
        host = urllib.parse.urlsplit(source.url).hostname
        if not is_online(host):  # said at once, not after the downloader's retries
            failures.append(f"{source.url} ({host} does not resolve: no network?)")
            continue
        try:
            with _downloaded(source) as checkpoint:
                _convert(architecture, source, checkpoint, path, published.classes)
            return
        except DownloadError as error:
            failures.append(f"{source.url} ({error})")
            if source is not published.sources[-1]:
                print(f"{name}: could not download {failures[-1]}; trying the next source.",
                      file=sys.stderr)
        except BadDownload as error:
            raise ArgumentError("weights", f'"{tag}" of {name}: the file from {source.url} '
                                           f"{error} It was removed; nothing was written to "
                                           f"{path}.") from None
    raise ArgumentError(
        "weights", f'"{tag}" of {name}: could not download {" or ".join(failures)}. '
                   f"Without a network: download the file elsewhere and run "
                   f"ghostnet-convert-weights FILE --arch {name} -o {path}, or put a converted "
                   "file there.")


def _torch_installed():
    import importlib.util
    return importlib.util.find_spec("torch") is not None


@contextlib.contextmanager
def _downloaded(source):
    """The local path of `source`'s checkpoint. A hub file stays in the hub's cache unless it
    turns out bad; a release asset goes to a temporary folder, removed after conversion (the
    converted file is what is kept)."""
    if source.hub_id is not None:
        path = _hub_download(source)
        try:
            yield path
        except BaseException:
            _forget_hub_file(path)  # a bad file must not be served again from the hub's cache
            raise
    else:
        with tempfile.TemporaryDirectory(prefix="ghostnet_tf_download_") as directory:
            yield _release_download(source, directory)


def _hub_download(source):
    from huggingface_hub import hf_hub_download

    try:
        path = hf_hub_download(source.hub_id, source.filename, endpoint=hub_endpoint())
    except Exception as error:  # httpx's, huggingface_hub's and the OS's errors alike
        raise DownloadError(first_line(error)) from error
    # The hub's cache names a large file's blob by its SHA-256, the hub's ETag: check it.
    blob = os.path.realpath(path)
    expected = source.sha256 or os.path.basename(blob)
    if _SHA256.match(expected):
        actual = sha256_of(blob)
        if actual != expected:
            _forget_hub_file(path)
            raise BadDownload(f"has the SHA-256 {actual}, the hub publishes {expected} (a "
                              "damaged or substituted download).")
    return path


def _forget_hub_file(path):
    """Remove a hub-cache snapshot link and the blob it points to."""
    blob = os.path.realpath(path)
    for file in {path, blob}:
        try:
            os.remove(file)
        except OSError:
            pass


def _release_download(source, directory):
    import keras

    try:
        return keras.utils.get_file(
            os.path.basename(source.release), source.url, cache_dir=directory,
            cache_subdir="", file_hash=source.sha256, hash_algorithm="sha256")
    except ValueError as error:  # the hash check
        raise BadDownload(f"fails the hash check: {first_line(error)}") from None
    except Exception as error:  # get_file wraps HTTP and URL errors in plain Exceptions
        raise DownloadError(first_line(error)) from error


def _convert(architecture, source, checkpoint, path, classes):
    from ghostnet_tf.weights.convert import (DeployFormCheckpoint, mismatch_summary,
                                             save_converted)

    try:
        model = save_converted(checkpoint, architecture, path, source.checkpoint_key)
    except (ArgumentError, ValueError) as error:
        reason = (error.problem if isinstance(error, ArgumentError) else str(error)
                  if isinstance(error, DeployFormCheckpoint) else mismatch_summary(error))
        raise BadDownload(f"is not a checkpoint of {architecture.name}: {reason}") from None
    if int(model.output_shape[-1]) != classes:
        os.remove(path)
        raise BadDownload(f"holds a checkpoint of {int(model.output_shape[-1])} classes, not "
                          f"the {classes} of the published weights.")

