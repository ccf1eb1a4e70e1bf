"""Finds the PostgreSQL server binaries (`initdb`, `postgres`) on this machine.

Debian keeps them in `/usr/lib/postgresql/<major>/bin`, off PATH; Homebrew in
`/opt/homebrew/opt/postgresql@<major>/bin`; `pg_config --bindir` knows where a client package's
server lives. We look in a fixed order and say where we looked when nothing is found.
"""

from __future__ import annotations

import glob
import os
import re
import shutil
import subprocess
from dataclasses import dataclass
from functools import cache
from pathlib import Path

#: Extra places to look, newest major first within each pattern.
_WELL_KNOWN = (
    "/usr/lib/postgresql/*/bin",  # Debian, Ubuntu
    "/usr/pgsql-*/bin",  # RHEL, Fedora (PGDG)
    "/opt/homebrew/opt/postgresql@*/bin",  # Homebrew, Apple silicon
    "/usr/local/opt/postgresql@*/bin",  # Homebrew, Intel
    "/opt/homebrew/opt/postgresql/bin",
    "/usr/local/opt/postgresql/bin",
    "/usr/local/pgsql/bin",  # source install default
)


@dataclass(frozen=True, slots=True)
class Binaries:
    """A directory holding `initdb` and `postgres`, and the server version they report."""

    bindir: Path
    version: str  # e.g. "15.18"
    found_by: str  # how we found it, for `jobforge doctor`

    @property
    def major(self) -> int:
        return int(self.version.split(".")[0])

    def tool(self, name: str) -> str:
        return str(self.bindir / name)


def _major_key(path: str) -> tuple[int, str]:
    numbers = re.findall(r"\d+", path)
    return (int(numbers[-1]) if numbers else 0, path)


def candidates(search: list[str] | None = None) -> list[tuple[Path, str]]:
    """Directories that may hold the binaries, in preference order, each with how it was found."""
    found: list[tuple[Path, str]] = []
    if env := os.environ.get("JOBFORGE_PG_BINDIR"):
        found.append((Path(env), "JOBFORGE_PG_BINDIR"))
    if search is not None:
        found.extend((Path(p), "search path") for p in search)
        return found
    if on_path := shutil.which("initdb"):
        found.append((Path(on_path).resolve().parent, "PATH"))
    if pg_config := shutil.which("pg_config"):
        try:
            out = subprocess.run(
                [pg_config, "--bindir"], capture_output=True, text=True, timeout=5, check=True
            ).stdout.strip()
            found.append((Path(out), "pg_config --bindir"))
        except (OSError, subprocess.SubprocessError):
            pass
    for pattern in _WELL_KNOWN:
        for match in sorted(glob.glob(pattern), key=_major_key, reverse=True):
            found.append((Path(match), f"well-known location {pattern}"))
    return found


@cache
def _version(postgres: str) -> str | None:
    try:
        out = subprocess.run(
            [postgres, "--version"], capture_output=True, text=True, timeout=10, check=True
        ).stdout
    except (OSError, subprocess.SubprocessError):
        return None
    match = re.search(r"(\d+(?:\.\d+)?)", out)
    return match.group(1) if match else None


def find(search: list[str] | None = None) -> Binaries | None:
    """The first usable binaries directory, or None."""
    seen: set[Path] = set()
    for directory, how in candidates(search):
        if directory in seen:
            continue
        seen.add(directory)
        initdb, postgres = directory / "initdb", directory / "postgres"
        if not (os.access(initdb, os.X_OK) and os.access(postgres, os.X_OK)):
            continue
        version = _version(str(postgres))
        if version is not None:
            return Binaries(directory, version, how)
    return None


def where_we_looked(search: list[str] | None = None) -> str:
    return ", ".join(dict.fromkeys(str(d) for d, _ in candidates(search))) or "(nowhere)"
