"""Which OS user runs a local server: Postgres refuses to run as root.

As root we run the server as the distribution's `postgres` user when it exists, else as a
dedicated `jobforge` system user that we create, else as `nobody`. Only the server changes user:
the test process (whose interpreter may live under root's private home) stays root.
"""

from __future__ import annotations

import os
import pwd
import shutil
import subprocess
from dataclasses import dataclass
from pathlib import Path

from jobforge import errors

DEDICATED_USER = "jobforge"


@dataclass(frozen=True, slots=True)
class ServerUser:
    """The identity the server process runs as; `switch` is False when that is us already."""

    name: str
    uid: int
    gid: int
    switch: bool

    @property
    def popen_user(self) -> int | None:
        """`user=` for subprocess: None keeps our own identity."""
        return self.uid if self.switch else None

    @property
    def popen_group(self) -> int | None:
        return self.gid if self.switch else None

    @property
    def popen_extra_groups(self) -> list[int] | None:
        return [] if self.switch else None

    def give(self, path: Path) -> None:
        """Make `path` (a directory we just created) the server user's."""
        if self.switch:
            os.chown(path, self.uid, self.gid)


def _lookup(name: str) -> pwd.struct_passwd | None:
    try:
        return pwd.getpwnam(name)
    except KeyError:
        return None


def _create_dedicated() -> pwd.struct_passwd | None:
    useradd = shutil.which("useradd") or shutil.which("adduser")
    if useradd is None:
        return None
    args = (
        [useradd, "--system", "--no-create-home", "--shell", "/usr/sbin/nologin", DEDICATED_USER]
        if useradd.endswith("useradd")
        else [useradd, "-S", "-D", "-H", DEDICATED_USER]  # busybox adduser
    )
    subprocess.run(args, capture_output=True, timeout=30, check=False)
    return _lookup(DEDICATED_USER)


def server_user(preferred: str | None = None) -> ServerUser:
    """The user a server started by this process runs as."""
    if os.geteuid() != 0:
        entry = pwd.getpwuid(os.geteuid())
        return ServerUser(entry.pw_name, entry.pw_uid, entry.pw_gid, switch=False)
    names = [preferred] if preferred else []
    names += [os.environ.get("JOBFORGE_SERVER_USER", ""), "postgres", DEDICATED_USER]
    for name in filter(None, names):
        if (found := _lookup(name)) is not None and found.pw_uid != 0:
            return ServerUser(found.pw_name, found.pw_uid, found.pw_gid, switch=True)
    created = _create_dedicated() or _lookup("nobody")
    if created is None:
        raise errors.ProvisionError(
            "running as root, Postgres needs an unprivileged OS user, and none could be found or "
            "created: create one (e.g. `useradd --system postgres`) or set JOBFORGE_SERVER_USER"
        )
    return ServerUser(created.pw_name, created.pw_uid, created.pw_gid, switch=True)


def can_traverse(user: ServerUser, path: Path) -> bool:
    """Whether `user` can reach `path` (every ancestor searchable), judged from mode bits."""
    if not user.switch:
        return True
    for ancestor in [path, *path.parents]:
        try:
            st = ancestor.stat()
        except FileNotFoundError:
            continue
        if st.st_uid == user.uid:
            ok = bool(st.st_mode & 0o100)
        elif st.st_gid == user.gid:
            ok = bool(st.st_mode & 0o010)
        else:
            ok = bool(st.st_mode & 0o001)
        if not ok:
            return False
    return True
