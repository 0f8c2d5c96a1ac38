"""Files: outputs checked before work, written whole or not at all (several at once too), never replacing a
device or a pipe; strict JSON and UTF-8 reading; folder locks."""

from __future__ import annotations

import math
import os
import subprocess
import sys

import pytest

from edgeprof.errors import EdgeprofError
from edgeprof.files import (
    atomic_output,
    atomic_outputs,
    check_writable,
    folder_lock,
    read_json,
    write_json_atomic,
    write_text_atomic,
)


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


def test_proc_is_refused_before_any_work_even_for_root():
    with pytest.raises(EdgeprofError, match="cannot write /proc/x.json: directory /proc"):
        check_writable("/proc/x.json")


def test_several_outputs_are_written_all_or_nothing(tmp_path):
    first, second = tmp_path / "a.json", tmp_path / "b.png"
    first.write_text("old")
    with pytest.raises(RuntimeError), atomic_outputs(first, second) as (tmp_a, tmp_b):
        tmp_a.write_text("new")
        raise RuntimeError("the plot failed")
    assert first.read_text() == "old" and not second.exists()
    assert sorted(p.name for p in tmp_path.iterdir()) == ["a.json"]
    with atomic_outputs(first, second) as (tmp_a, tmp_b):
        tmp_a.write_text("new")
        tmp_b.write_text("png")
    assert (first.read_text(), second.read_text()) == ("new", "png")


def test_an_os_error_while_writing_is_one_line_and_keeps_the_old_file(tmp_path, monkeypatch):
    path = tmp_path / "out.txt"
    write_text_atomic(path, "old")

    def full_disk(*args, **kwargs):
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(os, "replace", full_disk)
    with pytest.raises(EdgeprofError, match="cannot write .*out.txt: No space left on device"):
        write_text_atomic(path, "new")
    assert path.read_text() == "old" and [p.name for p in tmp_path.iterdir()] == ["out.txt"]


def test_a_temporary_file_of_a_killed_writer_is_removed_by_the_next_write(tmp_path):
    dead = subprocess.run([sys.executable, "-c", "import os; print(os.getpid())"], capture_output=True, text=True)
    orphan = tmp_path / f".out.json.{dead.stdout.strip()}.abc123.json"
    orphan.write_text("half")
    alive = tmp_path / f".out.json.{os.getpid()}.def456.json"  # a write in progress in a live process
    alive.write_text("busy")
    write_text_atomic(tmp_path / "out.json", "{}")
    assert sorted(p.name for p in tmp_path.iterdir()) == sorted([alive.name, "out.json"])


def test_json_is_written_and_read_strictly(tmp_path):
    path = tmp_path / "d.json"
    write_json_atomic(path, {"a": [1.5, {"b": 2}]})
    assert read_json(path) == {"a": [1.5, {"b": 2}]}
    with pytest.raises(EdgeprofError, match=r"non-finite number \(NaN or infinity\) at \$\.a\[1\]\.b"):
        write_json_atomic(path, {"a": [1.5, {"b": math.nan}]})
    assert read_json(path) == {"a": [1.5, {"b": 2}]}
    path.write_text('{"x": NaN}')
    with pytest.raises(EdgeprofError, match="not valid JSON \\(NaN is not a JSON number\\)"):
        read_json(path, "profile")
    path.write_bytes(b"\xff\xfe{}")
    with pytest.raises(EdgeprofError, match="profile .*d.json is not UTF-8 text"):
        read_json(path, "profile")


def test_a_locked_folder_refuses_a_second_holder_and_an_unused_new_folder_is_removed(tmp_path):
    folder = tmp_path / "run"
    holder = subprocess.Popen([sys.executable, "-c", "import sys, time\nfrom edgeprof.files import folder_lock\n"
                               f"with folder_lock({str(folder)!r}):\n    print('locked', flush=True)\n"
                               "    time.sleep(30)"], stdout=subprocess.PIPE, text=True)
    try:
        assert holder.stdout.readline().strip() == "locked"
        with pytest.raises(EdgeprofError, match=rf"run folder .*run is in use by another edgeprof process "
                                                rf"\(pid {holder.pid}\)"), folder_lock(folder, "run folder"):
            pass
    finally:
        holder.kill()
        holder.wait()
    with folder_lock(folder):  # the holder's death released the lock
        (folder / "log.csv").write_text("x")
    fresh = tmp_path / "fresh"
    with pytest.raises(RuntimeError), folder_lock(fresh):
        raise RuntimeError("refused inside")
    assert not fresh.exists() and (folder / "log.csv").exists()
