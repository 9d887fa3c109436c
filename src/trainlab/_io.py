"""Atomic file writes: a reader never sees a half-written file, a crash never loses the old one.

Every file trainlab writes goes through here: write to a temporary file in the same
directory, flush and fsync it, then ``os.replace`` it over the target (atomic on POSIX),
then fsync the directory so the rename itself survives a power loss.

Permissions follow the user's umask, as any file the user makes: files are created asking for
``0o664`` and folders for ``0o775`` and the kernel takes the umask off (022 gives 644 / 755,
077 gives 600 / 700); asking for no write bit for others keeps them never world-writable,
even under umask 000.
"""

from __future__ import annotations

import io
import json
import os
import uuid
from pathlib import Path
from typing import Any

FILE_MODE = 0o664  # before the umask; others never get write permission
DIR_MODE = 0o775


def make_dirs(path: str | os.PathLike) -> Path:
    """``mkdir -p`` with :data:`DIR_MODE` for every folder it creates (``Path.mkdir`` gives
    the parents 0o777 minus the umask: world-writable under umask 000)."""
    target = Path(path)
    missing, folder = [], target
    while not folder.is_dir() and folder != folder.parent:
        missing.append(folder)
        folder = folder.parent
    for folder in reversed(missing):
        try:
            folder.mkdir(mode=DIR_MODE)
        except FileExistsError:  # another process made it meanwhile
            if not folder.is_dir():
                raise
    return target


def _create_temp(directory: Path, name: str) -> tuple[int, Path]:
    """A new temporary file beside the target, created with :data:`FILE_MODE` minus the umask
    (``tempfile.mkstemp`` makes 0600 whatever the umask)."""
    flags = os.O_WRONLY | os.O_CREAT | os.O_EXCL | getattr(os, "O_CLOEXEC", 0) | getattr(os, "O_BINARY", 0)
    while True:
        tmp = directory / f".{name}.{uuid.uuid4().hex[:12]}.tmp"
        try:
            return os.open(tmp, flags, FILE_MODE), tmp
        except FileExistsError:
            continue


def _fsync_dir(directory: Path) -> None:
    try:
        fd = os.open(directory, os.O_RDONLY)
    except OSError:  # some filesystems do not allow opening directories
        return
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def atomic_write_bytes(path: str | os.PathLike, data: bytes) -> Path:
    """Write ``data`` to ``path`` atomically; returns the path."""
    path = Path(path)
    make_dirs(path.parent)
    fd, tmp = _create_temp(path.parent, path.name)
    try:
        with os.fdopen(fd, "wb") as f:
            f.write(data)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        try:
            os.unlink(tmp)
        except FileNotFoundError:
            pass
        raise
    _fsync_dir(path.parent)
    return path


def atomic_write_text(path: str | os.PathLike, text: str) -> Path:
    return atomic_write_bytes(path, text.encode("utf-8"))


def atomic_write_json(path: str | os.PathLike, obj: Any) -> Path:
    return atomic_write_text(path, json.dumps(obj, indent=2, sort_keys=True, default=str) + "\n")


def atomic_torch_save(path: str | os.PathLike, obj: Any) -> Path:
    """``torch.save`` through a buffer, then an atomic write. Load with ``weights_only=True``."""
    import torch  # here, not at the top: the store imports this module, and start-up stays light

    buf = io.BytesIO()
    torch.save(obj, buf)
    return atomic_write_bytes(path, buf.getvalue())


def torch_load(path: str | os.PathLike) -> Any:
    """Load a file written by :func:`atomic_torch_save`; never unpickles arbitrary objects.

    A checkpoint or weights file may come from someone else: ``weights_only=True`` lets its
    pickle build tensors and plain containers only, so a file that asks for anything else (a
    call to ``os.system``…) is refused, with nothing run, as a ``ConfigError`` naming it.
    """
    import pickle

    import torch

    try:
        return torch.load(path, map_location="cpu", weights_only=True)
    except pickle.UnpicklingError as err:
        from trainlab.errors import ConfigError

        reason = next((line.strip() for line in str(err).splitlines() if "Unsupported" in line), "not a tensor file")
        reason = reason.split(" Please use")[0].rstrip(".")  # drop torch's hint to allow the global
        raise ConfigError(
            f"{path}: refused to load: it holds Python objects beyond tensors and plain containers ({reason}); "
            "nothing in it was run. Load only checkpoints and weights saved by trainlab or torch.save of a state_dict"
        ) from None
