"""Atomic file writes: a reader never sees a half-written file, a crash never loses the old one.

Every file trainlab writes goes through here: write to a temporary file in the same
directory, flush and fsync it, then ``os.replace`` it over the target (atomic on POSIX),
then fsync the directory so the rename itself survives a power loss.

Permissions follow the user's umask, as any file the user makes: files are created asking for
``0o664`` and folders for ``0o775`` and the kernel takes the umask off (022 gives 644 / 755,
077 gives 600 / 700); asking for no write bit for others keeps them never world-writable,
even under umask 000.

Only a regular file (or a path that does not exist yet) is ever replaced: a device such as
``/dev/full``, a folder, a pipe or a socket is refused before anything is written (a rename
would put a plain file in the device's place); a symlink to a file writes the file it
points to. A failed write (a full disk, no permission) removes the temporary file, leaves
the old file as it was, and raises one :class:`~trainlab.errors.ConfigError` that says so.
"""

from __future__ import annotations

import errno
import io
import json
import os
import stat
import uuid
from pathlib import Path
from typing import Any

from trainlab.errors import ConfigError

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


def _kind(mode: int) -> str:
    if stat.S_ISDIR(mode):
        return "a folder"
    if stat.S_ISCHR(mode) or stat.S_ISBLK(mode):
        return "a device"
    if stat.S_ISFIFO(mode):
        return "a pipe"
    if stat.S_ISSOCK(mode):
        return "a socket"
    return "not a regular file"


def writable_target(path: str | os.PathLike) -> Path:
    """The file a write to ``path`` replaces: ``path`` itself, or the file a symlink points to.
    Anything but a regular file or a missing path is refused with a :class:`ConfigError`."""
    path = Path(path)
    try:
        mode = path.stat().st_mode  # follows symlinks
    except FileNotFoundError:
        return path
    except OSError as err:
        raise write_error(path, err) from err
    if not stat.S_ISREG(mode):
        fix = "give a file path inside it" if stat.S_ISDIR(mode) else "give the path of a regular file"
        raise ConfigError(f"cannot write {path}: it is {_kind(mode)}, not a regular file; {fix}")
    return Path(os.path.realpath(path)) if path.is_symlink() else path


def _short(text: str, limit: int = 120) -> str:
    return text if len(text) <= limit else f"{text[: limit // 2]}…{text[-limit // 2 :]}"


def write_error(path: Path, err: OSError, *, old_kept: bool = False) -> ConfigError:
    """One line for a failed write: what failed, whether the old file survived, the fix."""
    if err.errno in (errno.ENOSPC, errno.EDQUOT):
        full = "the disk is full" if err.errno == errno.ENOSPC else "the disk quota is exceeded"
        kept = "the previous file is unchanged" if old_kept else "nothing was written"
        return ConfigError(f"cannot write {path}: {full}; {kept}; free some space and try again")
    if err.errno in (errno.EACCES, errno.EPERM, errno.EROFS):
        return ConfigError(f"cannot write {path}: {err.strerror}; choose a folder you may write to")
    if err.errno in (errno.ENOTDIR, errno.EEXIST):
        return ConfigError(f"cannot write {path}: part of that path is a file, not a folder; give another path")
    if err.errno == errno.ENAMETOOLONG:
        return ConfigError(f"cannot write {_short(str(path))}: a name in that path is too long (255 bytes at most)")
    return ConfigError(f"cannot write {path}: {err.strerror or err}")


def atomic_write_bytes(path: str | os.PathLike, data: bytes) -> Path:
    """Write ``data`` to ``path`` atomically; returns the path written (a symlink's target)."""
    path = writable_target(path)
    existed = path.exists()
    tmp = None
    try:
        make_dirs(path.parent)
        fd, tmp = _create_temp(path.parent, path.name[:64])
        with os.fdopen(fd, "wb") as f:
            f.write(data)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException as err:
        if tmp is not None:
            try:
                os.unlink(tmp)
            except FileNotFoundError:
                pass
        if isinstance(err, OSError):
            raise write_error(path, err, old_kept=existed) from err
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
        reason = next((line.strip() for line in str(err).splitlines() if "Unsupported" in line), "not a tensor file")
        reason = reason.split(" Please use")[0].rstrip(".")  # drop torch's hint to allow the global
        raise ConfigError(
            f"{path}: refused to load: it holds Python objects beyond tensors and plain containers ({reason}); "
            "nothing in it was run. Load only checkpoints and weights saved by trainlab or torch.save of a state_dict"
        ) from None
