"""Reading a JSON file a user (or an attacker) handed us: every way it can be bad is one line
that names the file, never a traceback — unreadable, not UTF-8, not JSON, or nested deeper than
the parser's recursion allows. And writing a file atomically without following anything planted
at a predictable temporary name."""

from __future__ import annotations

import errno
import json
import os
import stat
import tempfile
from pathlib import Path
from typing import Any, Literal

from jobforge import errors


def read_json(path: Path, what: str) -> Any:
    """The JSON value in `path`; `what` names it in errors ("golden case", "bundle")."""
    try:
        raw = path.read_bytes()
    except OSError as exc:
        raise errors.ConfigurationError(f"cannot read {what} {path}: {exc.strerror}") from None
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise errors.ConfigurationError(
            f"{what} {path} is not UTF-8 (byte {exc.start}: {raw[exc.start : exc.start + 1]!r})"
        ) from None
    try:
        return json.loads(text)
    except json.JSONDecodeError as exc:
        raise errors.ConfigurationError(f"{what} {path} is not JSON: {exc}") from None
    except RecursionError:
        raise errors.ConfigurationError(
            f"{what} {path} is nested too deeply to read (more than about 1000 levels)"
        ) from None


def _umask() -> int:
    try:  # Linux: read it without changing it (os.umask would, for every thread, for a moment)
        for line in Path("/proc/self/status").read_text().splitlines():
            if line.startswith("Umask:"):
                return int(line.split()[1], 8)
    except (OSError, ValueError, IndexError):
        pass
    mask = os.umask(0o022)
    os.umask(mask)
    return mask


def write_atomic(path: Path, text: str, *, private: bool = False) -> None:
    """Write `text` (UTF-8) to `path` through a temporary file renamed over it.

    The temporary file gets a new random name in `path`'s folder, created with O_CREAT|O_EXCL
    (`mkstemp`): a file or symlink planted at a predictable name is never opened or followed, and
    the rename replaces `path` itself, never what a symlink at `path` points to. The file is 0600
    when `private`, else 0666 less the umask (as `open` would make it).
    """
    temporary = _temporary(path, text, private)
    try:
        os.replace(temporary, path)
    except BaseException:
        Path(temporary).unlink(missing_ok=True)
        raise


def _temporary(path: Path, text: str, private: bool) -> str:
    """A new file holding `text` under a random name beside `path` (O_CREAT|O_EXCL), a name
    that fits wherever `path`'s own does (its first 200 bytes, then 14 more)."""
    name = path.name.encode("utf-8", "surrogateescape")[:200].decode("utf-8", "ignore")
    handle, temporary = tempfile.mkstemp(prefix=f".{name}.", suffix=".tmp", dir=path.parent)
    try:
        with os.fdopen(handle, "w", encoding="utf-8", newline="\n") as out:
            os.fchmod(out.fileno(), 0o600 if private else 0o666 & ~_umask())
            out.write(text)
    except BaseException:
        Path(temporary).unlink(missing_ok=True)
        raise
    return temporary


Kept = Literal["written", "unchanged", "kept"]


def write_new(path: Path, text: str) -> Kept:
    """Write `text` to `path` only where nothing is: "written"; "unchanged" when `path` already
    holds exactly `text`; "kept" when anything else is there (another file's content, a symlink,
    a folder), which is left as it is. The file appears whole (a temporary file as in
    `write_atomic`, hard-linked into place, so a file made meanwhile is never replaced).

    A file that cannot be written (a name too long for the file system, a folder that is not
    there or not writable, a file system without hard links) is a `ConfigurationError` naming
    the file and the reason, never a bare OSError."""
    data = text.encode("utf-8")
    try:
        there = _holds(path, data)
        if there is not None:
            return "unchanged" if there else "kept"
        temporary = _temporary(path, text, private=False)
        try:
            os.link(temporary, path)
        except FileExistsError:
            return "unchanged" if _holds(path, data) else "kept"
        except OSError as exc:
            if exc.errno in _NO_HARD_LINKS:
                raise errors.ConfigurationError(
                    f"cannot write {path}: its file system has no hard links ({exc.strerror}), "
                    "and a file is written only where none is by linking it into place"
                ) from None
            raise
        finally:
            Path(temporary).unlink(missing_ok=True)
    except OSError as exc:
        raise errors.ConfigurationError(f"cannot write {path}: {exc.strerror or exc}") from None
    return "written"


#: What `link` says on a file system without hard links (Linux: EPERM on FAT, say).
_NO_HARD_LINKS = {errno.EPERM, errno.EOPNOTSUPP, errno.ENOTSUP, errno.EMLINK}
#: What `open` says of a name that holds something it will not read: a symlink (O_NOFOLLOW), an
#: unreadable file, a socket.
_SOMETHING_THERE = {errno.ELOOP, errno.EACCES, errno.EPERM, errno.ENXIO}


def _holds(path: Path, data: bytes) -> bool | None:
    """None when nothing is at `path`; whether it is a regular file holding exactly `data`."""
    try:
        handle = os.open(path, os.O_RDONLY | os.O_NOFOLLOW | os.O_NONBLOCK)
    except FileNotFoundError:
        return None
    except OSError as exc:
        if exc.errno in _SOMETHING_THERE:  # a symlink (never followed), or unreadable
            return False
        raise  # a name too long, a folder on the way that is a file: nothing can be written
    if not stat.S_ISREG(os.fstat(handle).st_mode):  # a folder, a FIFO, a device
        os.close(handle)
        return False
    with os.fdopen(handle, "rb") as existing:
        return existing.read(len(data) + 1) == data
