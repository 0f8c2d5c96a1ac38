"""Output files: checked before work, written whole or not at all, never replacing a device or a pipe."""

from __future__ import annotations

import os

import pytest

from edgeprof.errors import EdgeprofError
from edgeprof.files import atomic_output, check_writable, write_text_atomic


def test_atomic_write_replaces_only_on_success(tmp_path):
    path = tmp_path / "out.txt"
    write_text_atomic(path, "first")
    with pytest.raises(RuntimeError), atomic_output(path) as tmp:
        tmp.write_text("half")
        raise RuntimeError("interrupted")
    assert path.read_text() == "first"
    assert [p.name for p in tmp_path.iterdir()] == ["out.txt"]


def test_written_files_get_normal_permissions(tmp_path):
    path = tmp_path / "out.txt"
    write_text_atomic(path, "x")
    mask = os.umask(0)
    os.umask(mask)
    assert path.stat().st_mode & 0o777 == 0o666 & ~mask


@pytest.mark.parametrize(
    ("make", "message"),
    [
        (lambda t: t / "no" / "such" / "dir" / "f.json", "does not exist"),
        (lambda t: t, "is a directory"),
        (lambda t: (os.mkfifo(t / "pipe"), t / "pipe")[1], "not a regular file"),
    ],
)
def test_unwritable_targets(tmp_path, make, message):
    with pytest.raises(EdgeprofError, match=message):
        check_writable(make(tmp_path))
