"""Files are read strictly and written whole or not at all.

Writing: to a temporary file beside the target (named with the writer's pid), flushed to disk, then renamed
over the target, and the folder flushed, so a reader sees the old file or the new one, even after a power cut.
Several outputs of one command are renamed only once all of them are written (`atomic_outputs`). A temporary
file left by a killed process is removed by the next write of the same target. I/O errors become one line.
Reading: text must be UTF-8; JSON must be strict (no NaN or Infinity, which are not JSON). Folders that a run
owns are locked (`folder_lock`), so a second process is refused instead of mixing its files with the first's.
"""

from __future__ import annotations

import contextlib
import errno
import fcntl
import json
import math
import os
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from edgeprof.errors import EdgeprofError


def _reason(error: OSError) -> str:
    return error.strerror or str(error)


def check_writable(path: str | Path) -> Path:
    """Fail early, before any long work, when `path` cannot be written (tried, not guessed from permissions:
    root passes every permission check, yet cannot create files in /proc)."""
    path = Path(path)
    parent = path.parent if str(path.parent) else Path(".")
    if path.is_dir():
        raise EdgeprofError(f"cannot write {path}: it is a directory")
    if path.exists() and not path.is_file():  # a device or a pipe must never be replaced by a rename
        raise EdgeprofError(f"cannot write {path}: it is not a regular file")
    if not parent.is_dir():
        raise EdgeprofError(f"cannot write {path}: directory {parent} does not exist")
    try:
        with tempfile.NamedTemporaryFile(prefix=f".{path.name}.{os.getpid()}.probe.", dir=parent):
            pass
    except OSError as error:
        raise EdgeprofError(f"cannot write {path}: directory {parent}: {_reason(error)}") from None
    return path


def _pid_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def _remove_orphans(path: Path) -> None:
    """Delete temporary files of `path` whose writer no longer runs (killed mid-write)."""
    for candidate in path.parent.glob(f".{path.name}.*"):
        pid = candidate.name[len(path.name) + 2:].split(".", 1)[0]
        if pid.isdigit() and not _pid_alive(int(pid)):
            candidate.unlink(missing_ok=True)


def _fsync(path: Path) -> None:
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def _umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask


@contextlib.contextmanager
def atomic_outputs(*paths: str | Path) -> Iterator[list[Path]]:
    """Yield one temporary path per target; all of them replace their targets, only if the block finishes
    without error and every file was written. An `OSError` (a full disk, a failing rename) becomes one line."""
    targets = [check_writable(path) for path in paths]
    temporaries: list[Path] = []
    try:
        for target in targets:
            _remove_orphans(target)
            fd, tmp = tempfile.mkstemp(prefix=f".{target.name}.{os.getpid()}.", suffix=target.suffix,
                                       dir=target.parent)
            os.close(fd)
            temporaries.append(Path(tmp))
        yield temporaries
        for tmp in temporaries:
            _fsync(tmp)
            os.chmod(tmp, 0o666 & ~_umask())
        for tmp, target in zip(temporaries, targets, strict=True):
            os.replace(tmp, target)
        for folder in {target.parent for target in targets}:
            _fsync(folder)
    except OSError as error:
        where = error.filename or ", ".join(map(str, targets))
        raise EdgeprofError(f"cannot write {where}: {_reason(error)}") from None
    finally:
        for tmp in temporaries:
            tmp.unlink(missing_ok=True)


@contextlib.contextmanager
def atomic_output(path: str | Path) -> Iterator[Path]:
    """Yield a temporary path to write to; it replaces `path` only if the block finishes without error."""
    with atomic_outputs(path) as (tmp,):
        yield tmp


def write_text_atomic(path: str | Path, text: str) -> None:
    with atomic_output(path) as tmp:
        tmp.write_text(text, encoding="utf-8")


def non_finite(value: Any, where: str = "$") -> str | None:
    """The JSON path of the first NaN or infinity in `value`, or None."""
    if isinstance(value, float) and not math.isfinite(value):
        return where
    if isinstance(value, dict):
        items = value.items()
    elif isinstance(value, (list, tuple)):
        items = enumerate(value)
    else:
        return None
    for key, item in items:
        found = non_finite(item, f"{where}.{key}" if isinstance(key, str) else f"{where}[{key}]")
        if found:
            return found
    return None


def json_text(doc: Any, indent: int | None = 1) -> str:
    """`doc` as strict JSON text (refused when it holds NaN or infinity, which JSON cannot say)."""
    where = non_finite(doc)
    if where is not None:
        raise EdgeprofError(f"refusing to write a non-finite number (NaN or infinity) at {where}: it is not JSON")
    return json.dumps(doc, indent=indent, allow_nan=False) + "\n"


def write_json_atomic(path: str | Path, doc: Any) -> None:
    """Write `doc` as strict JSON, atomically."""
    write_text_atomic(path, json_text(doc))


def read_text(path: str | Path, what: str = "file") -> str:
    """A UTF-8 text file's content; unreadable or non-UTF-8 files are refused with one line."""
    path = Path(path)
    try:
        return path.read_text(encoding="utf-8")
    except UnicodeDecodeError as error:
        raise EdgeprofError(f"{what} {path} is not UTF-8 text (byte {error.start}): is it the right file?") from None
    except OSError as error:
        raise EdgeprofError(f"cannot read {what} {path}: {_reason(error)}") from None


def _refuse_constant(name: str) -> Any:
    raise ValueError(f"{name} is not a JSON number")


def parse_json(text: str, label: str) -> Any:
    """Strict JSON from `text` (`label` names it in the error): NaN and Infinity are refused."""
    try:
        return json.loads(text, parse_constant=_refuse_constant)
    except json.JSONDecodeError as error:
        raise EdgeprofError(f"{label}: not valid JSON (line {error.lineno}, column {error.colno}: {error.msg})"
                            ) from None
    except ValueError as error:
        raise EdgeprofError(f"{label}: not valid JSON ({error})") from None


def read_json(path: str | Path, what: str = "file") -> Any:
    """A strict JSON file's content."""
    return parse_json(read_text(path, what), f"{what} {path}")


def make_parents(folder: Path, what: str = "folder") -> None:
    """Create the folders above `folder` that are missing (an output folder's parents), or refuse in one line."""
    try:
        folder.parent.mkdir(parents=True, exist_ok=True)
    except OSError as error:
        raise EdgeprofError(f"cannot create {what} {folder}: {_reason(error)}") from None


@contextlib.contextmanager
def folder_lock(folder: str | Path, what: str = "folder") -> Iterator[Path]:
    """Hold an exclusive lock on `folder` (created if missing) for the block; a folder another process holds is
    refused with its pid. A folder this call created is removed again if the block fails and leaves it empty."""
    folder = Path(folder)
    created = not folder.exists()
    try:
        folder.mkdir(exist_ok=True)
        handle = (folder / ".lock").open("a+", encoding="utf-8")
    except OSError as error:
        raise EdgeprofError(f"cannot create {what} {folder}: {_reason(error)}") from None
    try:
        try:
            fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError as error:
            if error.errno not in (errno.EAGAIN, errno.EACCES):
                raise
            handle.seek(0)
            holder = handle.read().strip() or "unknown"
            raise EdgeprofError(f"{what} {folder} is in use by another edgeprof process (pid {holder}): wait for it "
                                "or choose another folder") from None
        handle.seek(0)
        handle.truncate()
        handle.write(f"{os.getpid()}\n")
        handle.flush()
        succeeded = False
        try:
            yield folder
            succeeded = True
        finally:
            fcntl.flock(handle, fcntl.LOCK_UN)
            if created and not succeeded and {p.name for p in folder.iterdir()} <= {".lock"}:
                (folder / ".lock").unlink(missing_ok=True)
                folder.rmdir()
    finally:
        handle.close()
