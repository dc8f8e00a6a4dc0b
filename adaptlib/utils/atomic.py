"""Writes that never leave a half-written file behind: write to a temporary file beside the target, then rename."""

from __future__ import annotations

import errno
import json
import os
import sys
import tempfile
from collections.abc import Callable
from contextlib import contextmanager
from pathlib import Path
from typing import Any, Iterator

import numpy as np

_UMASK = os.umask(0)
os.umask(_UMASK)


class WriteError(OSError):
    """A file that could not be written (disk full, read-only or unwritable folder): the message names it and says
    what to do. Nothing is left behind: the temporary file is removed."""

    def __init__(self, path: str | os.PathLike, err: OSError):
        super().__init__(err.errno, err.strerror or str(err), str(path))
        self.path = Path(path)

    def __str__(self) -> str:
        return f"could not write {self.path}: {self.strerror}{_advice(self.errno)}"


def _advice(code: int | None) -> str:
    if code in (errno.ENOSPC, errno.EDQUOT, errno.EFBIG):
        return " (free space on that disk, or choose a folder on another one)"
    if code in (errno.EACCES, errno.EPERM, errno.EROFS):
        return " (the folder is not writable: choose another one or fix its permissions)"
    return ""


@contextmanager
def atomic_path(target: str | os.PathLike) -> Iterator[Path]:
    """Yield a temporary path in the target's folder; on success rename it onto ``target``, else delete it.
    An ``OSError`` on the way (disk full, permissions) becomes a ``WriteError`` that names ``target``."""
    target = Path(target)
    tmp_path: Path | None = None
    try:
        target.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(prefix=f".{target.name}.", suffix=".tmp", dir=target.parent)
        os.close(fd)
        tmp_path = Path(tmp)
        os.chmod(tmp, 0o666 & ~_UMASK)  # mkstemp makes 0600 files; results and caches are ordinary files
        yield tmp_path
        os.replace(tmp_path, target)
    except BaseException as err:
        if tmp_path is not None:
            try:
                tmp_path.unlink(missing_ok=True)
            except OSError:
                pass
        if isinstance(err, OSError) and not isinstance(err, WriteError):
            raise WriteError(target, err) from None
        raise


_WARNED: set[str] = set()


def save_cache(target: str | os.PathLike, save: Callable[[Path], None], what: str = "cache") -> bool:
    """Write a cache file as ``atomic_save`` does; when it cannot be written (disk full, read-only folder) say so
    once per kind of cache and go on: a cache is never needed, the caller keeps its value in memory."""
    try:
        atomic_save(target, save)
        return True
    except OSError as err:
        _warn_cache(what, target, err)
        return False


def save_json_cache(target: str | os.PathLike, obj: Any, what: str = "cache") -> bool:
    """``atomic_write_json`` for a cache file: a failure is a warning (see ``save_cache``)."""
    text = json.dumps(obj, indent=2, sort_keys=True, default=_json_default) + "\n"
    return save_cache(target, lambda tmp: Path(tmp).write_text(text), what)


def _warn_cache(what: str, target: str | os.PathLike, err: OSError) -> None:
    if what not in _WARNED:
        _WARNED.add(what)
        reason = err.strerror if isinstance(err, WriteError) else str(err)
        print(f"warning: could not write the {what} {target} ({reason}); going on without it (computed in "
              f"memory, not kept)", file=sys.stderr, flush=True)


def remove_damaged(path: str | os.PathLike) -> None:
    """Delete a damaged cache file so it is recomputed; a folder that cannot be written keeps it (it is ignored)."""
    try:
        Path(path).unlink(missing_ok=True)
    except OSError:
        pass


def writable_problem(folder: str | os.PathLike) -> str | None:
    """Why files could not be written under ``folder`` (None when they can), found without creating anything:
    a temporary file tried in the folder if it exists, else the permissions of its nearest existing parent."""
    folder = Path(folder).expanduser()
    probe = folder
    while not probe.exists():
        if probe.parent == probe:
            break
        probe = probe.parent
    if probe.exists() and not probe.is_dir():
        return f"{probe} is a file, not a folder"
    if probe == folder:
        try:
            fd, tmp = tempfile.mkstemp(prefix=".write-test-", dir=folder)
            os.close(fd)
            os.unlink(tmp)
        except OSError as err:
            return f"{folder} is not writable ({err.strerror or err})"
        return None
    if not os.access(probe, os.W_OK | os.X_OK):
        return f"{folder} cannot be created: {probe} is not writable"
    return None


def atomic_write_bytes(target: str | os.PathLike, data: bytes) -> None:
    with atomic_path(target) as tmp:
        with open(tmp, "wb") as f:
            f.write(data)
            f.flush()
            os.fsync(f.fileno())


def atomic_write_text(target: str | os.PathLike, text: str) -> None:
    atomic_write_bytes(target, text.encode("utf-8"))


def atomic_write_json(target: str | os.PathLike, obj: Any, indent: int | None = 2) -> None:
    atomic_write_text(target, json.dumps(obj, indent=indent, sort_keys=True, default=_json_default) + "\n")


def atomic_save(target: str | os.PathLike, save: Callable[[Path], None]) -> None:
    """Run ``save(tmp_path)`` (e.g. a safetensors or numpy writer) and move its file into place."""
    with atomic_path(target) as tmp:
        save(tmp)


def _json_default(obj: Any) -> Any:
    if isinstance(obj, (np.integer,)):
        return int(obj)
    if isinstance(obj, (np.floating,)):
        return float(obj)
    if isinstance(obj, np.ndarray):
        return obj.tolist()
    if isinstance(obj, Path):
        return str(obj)
    raise TypeError(f"cannot write {type(obj).__name__} to JSON")
