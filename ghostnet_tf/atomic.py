"""Atomic file writes: write to a temporary file (or folder) beside the target, then rename
over it, so that a crash never leaves half a file where a complete one was; and the digest
that tells a whole file from a damaged one."""
import contextlib
import hashlib
import json
import os
import shutil
import tempfile


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


def replace_directory(build, path):
    """Write a directory through `build(temporary_path)`, then move it into place, so that a
    failed or killed build leaves any earlier one at `path` untouched, and the new one is
    never mixed with it. Returns what `build` returns."""
    parent = os.path.dirname(os.path.abspath(path))
    os.makedirs(parent, exist_ok=True)
    temporary = tempfile.mkdtemp(prefix=f".{os.path.basename(path)}.staging-", dir=parent)
    try:
        built = build(os.path.join(temporary, "new"))
        if os.path.exists(path):
            os.replace(path, os.path.join(temporary, "old"))
        os.replace(os.path.join(temporary, "new"), path)
    finally:
        shutil.rmtree(temporary, ignore_errors=True)
    return built


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
