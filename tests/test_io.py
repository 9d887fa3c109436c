"""Atomic writes replace only regular files; a failed write keeps the old file and says so."""

import errno
import os
import stat

import pytest

from trainlab._io import atomic_write_bytes, atomic_write_text
from trainlab.errors import ConfigError


def test_a_write_replaces_a_file_and_follows_a_symlink(tmp_path):
    atomic_write_text(tmp_path / "sub" / "a.txt", "one")
    assert (tmp_path / "sub" / "a.txt").read_text() == "one"
    atomic_write_text(tmp_path / "sub" / "a.txt", "two")
    assert (tmp_path / "sub" / "a.txt").read_text() == "two"
    (tmp_path / "link").symlink_to(tmp_path / "sub" / "a.txt")
    assert atomic_write_text(tmp_path / "link", "three") == tmp_path / "sub" / "a.txt"
    assert (tmp_path / "link").is_symlink() and (tmp_path / "sub" / "a.txt").read_text() == "three"


def test_anything_but_a_regular_file_is_refused(tmp_path):
    os.mkfifo(tmp_path / "pipe")
    targets = {
        tmp_path: "it is a folder, not a regular file; give a file path inside it",
        tmp_path / "pipe": "it is a pipe",
    }
    if os.geteuid() == 0:  # a private /dev/full
        os.mknod(tmp_path / "full", 0o666 | stat.S_IFCHR, os.makedev(1, 7))
        targets[tmp_path / "full"] = "it is a device, not a regular file"
    for target, message in targets.items():
        before = os.stat(target).st_mode
        with pytest.raises(ConfigError, match=message):
            atomic_write_bytes(target, b"x")
        assert os.stat(target).st_mode == before  # still a folder, pipe or device
    assert not list(tmp_path.glob(".*.tmp"))
    (tmp_path / "file").write_text("x")
    with pytest.raises(ConfigError, match="part of that path is a file, not a folder"):
        atomic_write_bytes(tmp_path / "file" / "out.html", b"x")


@pytest.mark.parametrize("where", ["write", "fsync"])
def test_a_full_disk_keeps_the_old_file_and_says_so(tmp_path, monkeypatch, where):
    target = tmp_path / "report.html"
    target.write_text("the old report")

    def no_space(*args):
        raise OSError(errno.ENOSPC, "No space left on device")

    if where == "fsync":
        monkeypatch.setattr(os, "fsync", no_space)
    else:
        real_fdopen = os.fdopen

        class FullDisk:  # the file object of a disk that fills up at the first write
            def __init__(self, fd, mode):
                self.f = real_fdopen(fd, mode)

            def __enter__(self):
                return self

            def __exit__(self, *exc):
                self.f.close()

            def fileno(self):
                return self.f.fileno()

            write = flush = staticmethod(no_space)

        monkeypatch.setattr(os, "fdopen", FullDisk)
    with pytest.raises(
        ConfigError,
        match=r"cannot write .*report\.html: the disk is full; the previous file is unchanged; free some space",
    ):
        atomic_write_text(target, "the new report")
    monkeypatch.undo()
    assert target.read_text() == "the old report"
    assert [p.name for p in tmp_path.iterdir()] == ["report.html"]  # no temporary file left behind
    with pytest.raises(ConfigError, match="nothing was written"):
        monkeypatch.setattr(os, "fsync", no_space)
        atomic_write_text(tmp_path / "new.html", "x")
    assert not (tmp_path / "new.html").exists()
