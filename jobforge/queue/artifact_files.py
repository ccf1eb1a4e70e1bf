"""Writing stored artifacts out as files (`jobforge runs artifacts --out DIR`), safely.

Every name is checked before anything is written: relative, within the names a run may give
an artifact (or the reserved `@logs.jsonl`), never `..`, never through a symlink already in DIR
(a symlink there could point anywhere: the write would land outside DIR), and never over an
existing file unless `force`. A name comes from the database, and a database is not trusted to
hold only what jobforge wrote. Each file is streamed into a temporary name beside its target,
its hash verified as it streams, and renamed into place only once it matched: a corrupt blob
leaves no file behind.
"""

from __future__ import annotations

import contextlib
import os
import re
import tempfile
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from jobforge import errors
from jobforge.queue.blobs import LOGS_NAME
from jobforge.queue.store import ArtifactStore

#: The names `RunContext.artifact` accepts (and the database's check on references).
_NAME = re.compile(r"[A-Za-z0-9_.-][A-Za-z0-9_./-]{0,199}")


@dataclass(frozen=True, slots=True)
class Wanted:
    name: str
    sha256: str
    size: int


@dataclass(frozen=True, slots=True)
class Written:
    name: str
    path: Path
    sha256: str
    size: int


def check_name(name: str) -> str:
    """`name` when it is safe as a path relative to the output folder; one line otherwise."""
    if name == LOGS_NAME:
        return name
    parts = name.split("/")
    if (
        _NAME.fullmatch(name) is None
        or any(part in ("", ".", "..") for part in parts)
        or name.startswith("/")
    ):
        raise errors.ArtifactError(
            f"refusing artifact name {name[:240]!r}: not a plain relative name "
            "([A-Za-z0-9_./-], no '..', '.' or empty parts)"
        )
    return name


def target(out: Path, name: str, *, force: bool) -> Path:
    """Where `name` goes in `out`, refused when a part of the way is a symlink or not a folder,
    or (without `force`) a file is there already."""
    path = out
    parts = check_name(name).split("/")
    for part in parts[:-1]:
        path = path / part
        if path.is_symlink():
            raise errors.ArtifactError(f"refusing to write {name}: {path} is a symlink")
        if path.exists() and not path.is_dir():
            raise errors.ArtifactError(f"refusing to write {name}: {path} is not a folder")
    path = path / parts[-1]
    if path.is_symlink():
        raise errors.ArtifactError(f"refusing to write {name}: {path} is a symlink")
    if path.exists():
        if path.is_dir():
            raise errors.ArtifactError(f"refusing to write {name}: {path} is a folder")
        if not force:
            raise errors.ArtifactError(f"{path} exists: give --force to overwrite it")
    return path


def check_out(out: Path) -> Path:
    """`out` when it is a folder or missing (nothing is made); one line (a usage error) when it
    is a file or a symlink."""
    if out.is_symlink():
        raise errors.ConfigurationError(f"--out {out} is a symlink: give the folder itself")
    if out.exists() and not out.is_dir():
        raise errors.ConfigurationError(f"--out {out} is not a folder")
    return out


def prepare(out: Path) -> Path:
    """`out`, made when missing; one line when it is a file or a symlink or cannot be made."""
    check_out(out)
    try:
        out.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise errors.ConfigurationError(f"cannot make --out {out}: {exc.strerror or exc}") from None
    return out


def write_all(
    store: ArtifactStore, tenant: str, wanted: Sequence[Wanted], out: Path, *, force: bool
) -> list[Written]:
    """Write each artifact to `out` under its name (every name checked before the first write);
    what was written, in order."""
    names = [w.name for w in wanted]
    if len(set(names)) != len(names):
        raise errors.ArtifactError("two artifacts have the same name: give --attempt or --name")
    prepare(out)
    planned = [(w, target(out, w.name, force=force)) for w in wanted]
    return [_write(store, tenant, w, path, out) for w, path in planned]


def _write(store: ArtifactStore, tenant: str, wanted: Wanted, path: Path, out: Path) -> Written:
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        handle, temporary = tempfile.mkstemp(prefix=".artifact-", dir=path.parent)
    except OSError as exc:
        raise errors.ArtifactError(
            f"cannot write {wanted.name} into {out}: {exc.strerror or exc}"
        ) from None
    size = 0
    try:
        with os.fdopen(handle, "wb") as sink:
            for chunk in store.chunks(tenant, wanted.sha256):
                sink.write(chunk)
                size += len(chunk)
            sink.flush()
            os.fsync(sink.fileno())
        if size != wanted.size:
            raise errors.ArtifactCorrupt(
                f"artifact {wanted.name}: {size} bytes read, the run recorded {wanted.size}"
            )
        os.replace(temporary, path)
    except BaseException as exc:
        with contextlib.suppress(OSError):
            os.unlink(temporary)
        if isinstance(exc, OSError):
            raise errors.ArtifactError(
                f"cannot write {wanted.name} into {out}: {exc.strerror or exc}"
            ) from None
        raise
    return Written(wanted.name, path, wanted.sha256, size)
