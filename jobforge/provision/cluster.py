"""A cache of freshly initialised clusters, so a session copies one instead of running initdb.

`initdb` costs ~0.5 s here; copying an initialised cluster onto tmpfs costs ~45 ms. The cache is
keyed by the binaries (path and version) and the initdb arguments, built once under a file lock,
and written by atomic rename so a killed build never leaves half a cluster behind.
"""

from __future__ import annotations

import hashlib
import os
import shutil
import subprocess
import tempfile
from collections.abc import Mapping
from pathlib import Path

import platformdirs
from filelock import FileLock

from jobforge import errors
from jobforge.provision.binaries import Binaries
from jobforge.provision.osuser import ServerUser

#: initdb arguments of throwaway clusters: C locale and UTF-8 for stable text ordering in golden
#: tests. No TCP connection is ever accepted (`reject`, even if one were listened for); the unix
#: socket trusts whoever reaches it, and it lives in the cluster's private 0700 directory, which
#: only the server's OS user (and root) can enter.
INITDB_ARGS = (
    "-U", "postgres", "--auth-local=trust", "--auth-host=reject", "-E", "UTF8", "--locale=C",
    "--no-sync", "--no-instructions",
)  # fmt: skip


#: The environment of initdb and postgres: nothing inherited from the caller, a UTF-8 C locale.
SERVER_ENV: Mapping[str, str] = {"PATH": os.defpath, "LC_ALL": "C.UTF-8", "LANG": "C.UTF-8"}


def cache_root() -> Path:
    if env := os.environ.get("JOBFORGE_CACHE_DIR"):
        return Path(env)
    return Path(platformdirs.user_cache_dir("jobforge"))


def scratch_root() -> Path:
    """Where throwaway clusters live: $JOBFORGE_SCRATCH_DIR when set (a benchmark whose data
    outgrows memory, or that must pay for real fsyncs, puts its server on disk), else tmpfs when
    there is one with room, else the temp dir."""
    if env := os.environ.get("JOBFORGE_SCRATCH_DIR"):
        return Path(env)
    shm = Path("/dev/shm")
    try:
        if shm.is_dir() and os.access(shm, os.W_OK):
            st = os.statvfs(shm)
            if st.f_bavail * st.f_frsize > 512 * 1024 * 1024:
                return shm
    except OSError:
        pass
    return Path(tempfile.gettempdir())


def initdb(
    binaries: Binaries, user: ServerUser, data_dir: Path, args: tuple[str, ...] = INITDB_ARGS
) -> None:
    """Run initdb into `data_dir` (whose parent the server user can write) as the server user."""
    result = subprocess.run(
        [binaries.tool("initdb"), "-D", str(data_dir), *args],
        capture_output=True,
        text=True,
        env=SERVER_ENV,
        timeout=120,
        check=False,
        user=user.popen_user,
        group=user.popen_group,
        extra_groups=user.popen_extra_groups,
    )
    if result.returncode != 0:
        raise errors.ProvisionError(
            f"initdb ({binaries.bindir}) failed as user {user.name!r}: "
            f"{(result.stderr or result.stdout).strip()[-800:]}"
        )


def _key(binaries: Binaries) -> str:
    material = f"{binaries.bindir.resolve()}|{binaries.version}|{' '.join(INITDB_ARGS)}"
    return f"pg{binaries.version}-{hashlib.sha256(material.encode()).hexdigest()[:12]}"


def copy_tree(source: Path, target: Path) -> None:
    """Copy a cluster preserving modes and owners; `cp -a` is ~3x faster than copytree here."""
    cp = shutil.which("cp")
    if cp is not None:
        result = subprocess.run(
            [cp, "-a", str(source), str(target)], capture_output=True, check=False
        )
        if result.returncode == 0:
            return
        shutil.rmtree(target, ignore_errors=True)
    shutil.copytree(source, target, symlinks=True)


def cached_cluster(binaries: Binaries, user: ServerUser) -> Path | None:
    """A pristine initialised cluster for these binaries, building it on first use.

    Returns None when the cache cannot be written (read-only home, full disk): the caller then
    runs initdb in place, which is slower but works.
    """
    root = cache_root() / "clusters"
    target = root / _key(binaries)
    if (target / "PG_VERSION").is_file():
        return target
    try:
        root.mkdir(parents=True, exist_ok=True)
        with FileLock(str(root / f"{target.name}.lock"), timeout=300):
            if (target / "PG_VERSION").is_file():
                return target
            build = Path(tempfile.mkdtemp(prefix="jf-initdb-", dir=scratch_root()))
            try:
                user.give(build)
                initdb(binaries, user, build / "data")
                staging = root / f"{target.name}.partial-{os.getpid()}"
                shutil.rmtree(staging, ignore_errors=True)
                copy_tree(build / "data", staging)
                os.replace(staging, target)
            finally:
                shutil.rmtree(build, ignore_errors=True)
    except OSError:
        return None
    return target
