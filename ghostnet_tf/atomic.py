"""Atomic file writes: write to a temporary file beside the target, then rename over it, so
that a crash never leaves half a file where a complete one was; and the digest that tells a
whole file from a damaged one."""
import contextlib
import hashlib
import json
import os


def write_atomically(path, write):
    """Call `write(temporary_path)`, then rename the result to `path`. When writing fails
    (a full disk, a kill is another matter) the temporary file is removed and `path` keeps
    what it had."""
    directory, name = os.path.split(os.fspath(path))
    # The whole extension stays at the end (Keras insists on ".weights.h5").
    stem, dot, extension = name.partition(".")
    temporary = os.path.join(directory, f".{stem}.partial{dot}{extension}")
    try:
        write(temporary)
        os.replace(temporary, path)
    except BaseException:
        with contextlib.suppress(OSError):
            os.remove(temporary)
        raise


def write_file(path, content):
    """Write bytes or text to `path` atomically."""
    mode = "wb" if isinstance(content, bytes) else "w"

    def write(temporary):
        with open(temporary, mode) as handle:
            handle.write(content)
    write_atomically(path, write)


def write_json(path, data):
    def write(temporary):
        with open(temporary, "w") as handle:
            json.dump(data, handle, indent=2)
    write_atomically(path, write)


def read_json(path):
    """The JSON at `path`, or None when the file is missing, empty or damaged."""
    try:
        with open(path) as handle:
            return json.load(handle)
    except (OSError, ValueError):
        return None


def sha256_of(path):
    """The SHA-256 of the file at `path`, as hex."""
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        for chunk in iter(lambda: handle.read(1 << 20), b""):
            digest.update(chunk)
    return digest.hexdigest()
