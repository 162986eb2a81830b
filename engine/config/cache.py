"""A per-user cache of configuration checks, keyed by the bytes of every file they read: safe to delete, never stale.

Where: ``$QAFLOW_CACHE_DIR``, else ``$XDG_CACHE_HOME/qaflow``, else ``~/.cache/qaflow``.
``QAFLOW_CACHE=0`` (or ``off``, ``no``, ``false``) turns it off.

An entry is plain JSON (problem lists, names, public-holiday tables), never pickled objects: what is
read back is data the loader rebuilds live objects from, so a file planted in the folder cannot run
code. Entries are still read only from a folder and files the user owns that nobody else may write.

The key of an entry hashes, besides the bytes of the files read: the qaflow version, the Python
version, the size and modification time of every module of the engine (so an edited checkout is a
new key, as Python's own .pyc files work) and of the libraries whose answers are kept (PyYAML,
jsonschema, holidays, RE2), and whatever the caller adds (the working directory, which problems name
files relative to). Entries are written to a temporary file and renamed into place, so a concurrent
run reads a whole entry or none; one that cannot be read, parsed or trusted is ignored (and rewritten);
the least recently used are removed past ``KEEP``.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import stat
import sys
import time
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from functools import cache
from importlib.util import find_spec
from pathlib import Path
from typing import Any

__all__ = ["KEEP", "Snapshot", "cache_dir", "load", "snapshot", "store"]

#: Bump when what an entry holds changes shape.
FORMAT = 1
#: Entries kept; writing one more removes the least recently used.
KEEP = 64
#: A file larger than this is not cached (the YAML reader refuses files over 1 MB anyway).
MAX_FILE_BYTES = 1_000_000
#: Files in one key at most: a folder holding more than this is not a configuration.
MAX_FILES = 2_000
#: Libraries whose answers end up in entries (messages, positions, holidays, pattern checks).
LIBRARIES = ("yaml", "_yaml", "jsonschema", "jsonschema_specifications", "referencing", "holidays", "re2", "_re2")
_OFF = frozenset({"0", "off", "no", "false"})
_TMP_PREFIX = ".tmp-"
_STALE_TMP_SECONDS = 3600  # a temporary file this old was left by a run that died


def cache_dir() -> Path | None:
    """The cache folder, or None when ``QAFLOW_CACHE`` turns the cache off."""
    if os.environ.get("QAFLOW_CACHE", "").strip().lower() in _OFF:
        return None
    explicit = os.environ.get("QAFLOW_CACHE_DIR")
    if explicit:
        return Path(explicit)
    xdg = os.environ.get("XDG_CACHE_HOME")
    if xdg and os.path.isabs(xdg):  # the XDG spec: a relative path is invalid and ignored
        return Path(xdg) / "qaflow"
    try:
        return Path.home() / ".cache" / "qaflow"
    except RuntimeError:  # no home folder to be found
        return None


# --------------------------------------------------------------------------- keys


@cache
def _environment() -> bytes:
    """What besides the files decides an entry: versions, the engine's modules, the libraries'."""
    from .. import __version__

    parts = [f"format {FORMAT}", f"qaflow {__version__}", f"python {sys.version}", sys.implementation.cache_tag or ""]
    package = Path(__file__).resolve().parents[1]
    for path in sorted(package.rglob("*.py")):
        info = path.stat()
        parts.append(f"{path.relative_to(package).as_posix()} {info.st_size} {info.st_mtime_ns}")
    for name in LIBRARIES:
        try:
            spec = find_spec(name)
        except (ImportError, ValueError):
            spec = None
        origin = spec.origin if spec is not None else None
        if origin and os.path.isfile(origin):
            info = os.stat(origin)
            parts.append(f"{name} {origin} {info.st_size} {info.st_mtime_ns}")
        else:
            parts.append(f"{name} absent")
    return "\n".join(parts).encode("utf-8", "surrogateescape")


@dataclass(frozen=True)
class Snapshot:
    """The bytes of the files a check reads, read once, and the key they make with the context."""

    key: str
    files: Mapping[Path, bytes]


def _update(digest: Any, data: bytes) -> None:
    digest.update(len(data).to_bytes(8, "little"))  # length-prefixed: no two inputs hash alike by running together
    digest.update(data)


def snapshot(paths: Iterable[Path], *, context: Iterable[str] = (), blobs: Iterable[bytes] = ()) -> Snapshot | None:
    """Read ``paths`` and hash them with ``context`` (text) and ``blobs`` (bytes already read elsewhere).

    None if a file cannot be read or is too large to cache (the check then runs as it would without a cache).
    """
    digest = hashlib.sha256()
    _update(digest, _environment())
    for text in context:
        _update(digest, text.encode("utf-8", "surrogateescape"))
    for blob in blobs:
        _update(digest, blob)
    files: dict[Path, bytes] = {}
    for count, path in enumerate(paths):
        if count >= MAX_FILES:
            return None
        try:
            with open(path, "rb") as handle:
                data = handle.read(MAX_FILE_BYTES + 1)
        except OSError:
            return None
        if len(data) > MAX_FILE_BYTES:
            return None
        files[path] = data
        _update(digest, str(path).encode("utf-8", "surrogateescape"))
        _update(digest, data)
    return Snapshot(digest.hexdigest(), files)


# --------------------------------------------------------------------------- reading and writing


def _entry_path(folder: Path, kind: str, key: str) -> Path:
    return folder / f"{kind}-{key}.json"


def _trusted(info: os.stat_result, *, folder: bool) -> bool:
    """Owned by this user (or nobody is checked: no uids here) and writable by nobody else."""
    kind_ok = stat.S_ISDIR(info.st_mode) if folder else stat.S_ISREG(info.st_mode)
    if not kind_ok:
        return False
    getuid = getattr(os, "getuid", None)
    if getuid is None:  # Windows: no owner to compare, and entries are plain data
        return True
    return info.st_uid == getuid() and not info.st_mode & (stat.S_IWGRP | stat.S_IWOTH)


def load(kind: str, key: str) -> dict[str, Any] | None:
    """The payload stored under ``kind``/``key``, or None: no cache, no entry, or one that is not to be trusted."""
    folder = cache_dir()
    if folder is None:
        return None
    path = _entry_path(folder, kind, key)
    try:
        if not _trusted(os.stat(folder), folder=True):
            return None
        flags = os.O_RDONLY | getattr(os, "O_NOFOLLOW", 0) | getattr(os, "O_CLOEXEC", 0) | getattr(os, "O_BINARY", 0)
        fd = os.open(path, flags)
        try:
            if not _trusted(os.fstat(fd), folder=False):
                return None
            with os.fdopen(fd, "rb", closefd=False) as handle:
                raw = handle.read()
        finally:
            os.close(fd)
        entry = json.loads(raw)
    except (OSError, ValueError, RecursionError):
        return None
    if not isinstance(entry, dict) or entry.get("format") != FORMAT or entry.get("kind") != kind or entry.get("key") != key:
        return None
    payload = entry.get("payload")
    if not isinstance(payload, dict):
        return None
    with contextlib.suppress(OSError):
        os.utime(path)  # used: the last to be removed
    return payload


def store(kind: str, key: str, payload: Mapping[str, Any]) -> bool:
    """Write an entry (to a temporary file, then renamed into place); False if it could not be written."""
    folder = cache_dir()
    if folder is None:
        return False
    try:
        folder.mkdir(mode=0o700, parents=True, exist_ok=True)
        if not _trusted(os.stat(folder), folder=True):
            return False
        text = json.dumps({"format": FORMAT, "kind": kind, "key": key, "payload": payload},
                          ensure_ascii=False, separators=(",", ":"))
        import tempfile  # here: reading entries (every run) needs none of it

        fd, tmp = tempfile.mkstemp(prefix=_TMP_PREFIX, suffix=".json", dir=folder)  # mode 0600
        try:
            with os.fdopen(fd, "wb") as handle:
                handle.write(text.encode("utf-8"))
            os.replace(tmp, _entry_path(folder, kind, key))
        except BaseException:
            with contextlib.suppress(OSError):
                os.unlink(tmp)
            raise
    except (OSError, TypeError, ValueError):
        return False
    _prune(folder)
    return True


def _prune(folder: Path) -> None:
    """Keep the ``KEEP`` entries used last; remove temporary files that runs which died left behind."""
    entries: list[tuple[float, str]] = []
    now = time.time()
    try:
        with os.scandir(folder) as listing:
            for item in listing:
                try:
                    if not item.is_file(follow_symlinks=False):
                        continue
                    if item.name.startswith(_TMP_PREFIX):
                        if now - item.stat(follow_symlinks=False).st_mtime > _STALE_TMP_SECONDS:
                            os.unlink(item.path)
                    elif item.name.endswith(".json"):
                        entries.append((item.stat(follow_symlinks=False).st_mtime, item.path))
                except OSError:
                    continue  # another run removed it first
    except OSError:
        return
    entries.sort(reverse=True)
    for _, path in entries[KEEP:]:
        with contextlib.suppress(OSError):
            os.unlink(path)  # another run may have removed it first
