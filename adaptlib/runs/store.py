"""The results store: one JSON file per run under a path named from the run's key, written atomically.

Layout of a store folder::

    <key>.json               a run's result (key = backbone/setting/dataset/method/shotsK-seedS-<hash>)
    _failures/<key>.json     the last error of a run that raised (removed when the run later succeeds)
    _invalid/<key>.<n>.json  result files that did not parse or did not match their key, moved aside
    _locks/<key>.lock        claim of a run while a process runs it (an flock: released when the process dies)
    _states/<key>.safetensors trained parameters of runs that keep them (drift analysis)
    _journal.jsonl           one line per run started, finished or failed (an audit trail, appended)

A run is done when its valid result file exists: it parses, its config matches its ``config_hash`` and key, and
the whole record matches the ``content_hash`` written with it (so metrics edited by hand are caught); an invalid
file is moved to ``_invalid/`` and its run redone. Folders starting with ``_`` are never read as results.
"""

from __future__ import annotations

import errno
import fcntl
import hashlib
import json
import os
import socket
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from ..utils.atomic import WriteError, _json_default, atomic_write_json
from .spec import RunSpec

REQUIRED = ("key", "config", "config_hash", "metrics")


class InvalidResult(ValueError):
    """A result file that cannot be used: it does not parse, or it was written for another run."""


def result_path(root: Path, key: str) -> Path:
    return Path(root) / f"{key}.json"


def failure_path(root: Path, key: str) -> Path:
    return Path(root) / "_failures" / f"{key}.json"


def lock_path(root: Path, key: str) -> Path:
    return Path(root) / "_locks" / f"{key}.lock"


def state_dir(root: Path) -> Path:
    return Path(root) / "_states"


def content_hash(record: dict) -> str:
    """sha256 of the whole record as JSON (every field but ``content_hash`` itself): an edit anywhere (metrics,
    chosen values, the training log) no longer matches it."""
    body = {k: v for k, v in record.items() if k != "content_hash"}
    body = json.loads(json.dumps(body, default=_json_default))  # the record exactly as the file holds it
    return hashlib.sha256(json.dumps(body, sort_keys=True, separators=(",", ":")).encode()).hexdigest()


def write_result(root: Path, result: dict) -> Path:
    """Write ``result`` atomically with its ``content_hash``; ``result`` itself is not changed."""
    path = result_path(root, result["key"])
    atomic_write_json(path, {**result, "content_hash": content_hash(result)})
    return path


def read_result(path: Path, expected: RunSpec | None = None) -> dict:
    """The record in ``path``, checked: it parses, holds a result, its config hashes to its ``config_hash``,
    its key is the file's own name, and (with ``expected``) it is that run's. Else ``InvalidResult``."""
    try:
        record = json.loads(Path(path).read_text())
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as err:
        raise InvalidResult(f"{path} does not parse ({type(err).__name__}: {err})") from None
    if not isinstance(record, dict) or any(k not in record for k in REQUIRED):
        raise InvalidResult(f"{path} is not a result record (needs {', '.join(REQUIRED)})")
    try:
        spec = RunSpec.from_dict(record["config"])
    except (TypeError, ValueError, KeyError) as err:
        raise InvalidResult(f"{path} holds a config that is not a run's ({err})") from None
    if spec.config_hash() != record["config_hash"] or spec.key() != record["key"]:
        raise InvalidResult(f"{path}: its config does not match its config_hash/key (edited or damaged)")
    if "content_hash" in record and record["content_hash"] != content_hash(record):
        raise InvalidResult(f"{path}: its content does not match its content_hash (metrics or other fields edited "
                            f"by hand, or damaged)")
    if expected is not None and record["key"] != expected.key():
        raise InvalidResult(f"{path} holds run {record['key']}, not {expected.key()}")
    if not isinstance(record["metrics"], dict):
        raise InvalidResult(f"{path}: metrics must be a mapping")
    return record


def valid_result(root: Path, spec: RunSpec) -> dict | None:
    """The run's valid result, None if there is none; raises ``InvalidResult`` for a file that is there but bad."""
    path = result_path(root, spec.key())
    if not path.exists():
        return None
    return read_result(path, spec)


def quarantine(root: Path, key: str) -> Path | None:
    """Move a bad result file to ``_invalid/`` (kept for inspection, never read as a result)."""
    path = result_path(root, key)
    for n in range(1000):
        target = Path(root) / "_invalid" / f"{key}.{n}.json"
        if not target.exists():
            break
    target.parent.mkdir(parents=True, exist_ok=True)
    try:
        os.replace(path, target)
    except FileNotFoundError:
        return None
    return target


def write_failure(root: Path, spec: RunSpec, error: BaseException | str, trace: str, sweep: str) -> Path:
    path = failure_path(root, spec.key())
    atomic_write_json(path, {"key": spec.key(), "config": spec.to_dict(), "config_hash": spec.config_hash(),
                             "error": error if isinstance(error, str) else f"{type(error).__name__}: {error}",
                             "traceback": trace, "sweep": sweep, "host": socket.gethostname(), "pid": os.getpid(),
                             "time": time.strftime("%Y-%m-%dT%H:%M:%S")})
    return path


def read_failure(root: Path, key: str) -> dict | None:
    try:
        return json.loads(failure_path(root, key).read_text())
    except (OSError, json.JSONDecodeError):
        return None


def clear_failure(root: Path, key: str) -> None:
    failure_path(root, key).unlink(missing_ok=True)


def journal(root: Path, event: str, key: str, sweep: str, **extra) -> None:
    """Append one line to the store's journal (O_APPEND: lines of concurrent processes never interleave)."""
    line = json.dumps({"event": event, "key": key, "sweep": sweep, "host": socket.gethostname(), "pid": os.getpid(),
                       "time": round(time.time(), 3), **extra}, sort_keys=True) + "\n"
    path = Path(root) / "_journal.jsonl"
    try:
        fd = os.open(path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o644)
        try:
            os.write(fd, line.encode())
        finally:
            os.close(fd)
    except OSError as err:  # disk full: name the file, and leave no empty journal behind
        try:
            if path.stat().st_size == 0:
                path.unlink()
        except OSError:
            pass
        raise WriteError(path, err) from None


def read_journal(root: Path) -> list[dict]:
    path = Path(root) / "_journal.jsonl"
    if not path.is_file():
        return []
    out = []
    for line in path.read_text().splitlines():
        try:
            out.append(json.loads(line))
        except json.JSONDecodeError:  # a line cut by a kill
            continue
    return out


@contextmanager
def claim(root: Path, key: str, wait: bool = False) -> Iterator[bool]:
    """Hold the run's lock for the block: yields True when this process holds it, False when another does
    (``wait=False``). The lock is an flock, so the kernel frees it when its holder dies, even by SIGKILL."""
    path = lock_path(root, key)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o644)
    try:
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | (0 if wait else fcntl.LOCK_NB))
        except OSError as err:
            if err.errno in (errno.EWOULDBLOCK, errno.EAGAIN, errno.EACCES):
                yield False
                return
            raise
        try:
            yield True
        finally:
            fcntl.flock(fd, fcntl.LOCK_UN)
    finally:
        os.close(fd)


def result_files(root: Path) -> Iterator[Path]:
    """Every result file of the store (not the ``_`` folders, not temporary files)."""
    root = Path(root)
    for path in sorted(root.rglob("*.json")):
        rel = path.relative_to(root).parts
        if any(part.startswith(("_", ".")) for part in rel):
            continue
        yield path
