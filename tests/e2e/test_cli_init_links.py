"""`jobforge init` never writes through a symlink planted in the folder (security review, [3/10]):
a symlinked pyproject.toml or .gitignore (a broken one too), or a symlinked `.github/`, `tests/`,
`golden/`, `contracts/` or package folder leading outside the project, refuses the whole run in
one line naming the path, before anything is written; a symlinked folder that stays inside the
project is written into. And a --package too long for a file name is one line, not a traceback."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from jobforge.scaffold import _write
from tests.e2e.conftest import Cli

pytestmark = pytest.mark.slow

VICTIM = '[project]\nname = "v"\n'


def _tree(folder: Path) -> dict[str, str]:
    """Every entry under `folder`, a symlink as `-> target` (never followed)."""
    found: dict[str, str] = {}
    for path in sorted(folder.rglob("*")):
        name = path.relative_to(folder).as_posix()
        if path.is_symlink():
            found[name] = f"-> {os.readlink(path)}"
        elif path.is_file():
            found[name] = path.read_text()
        else:
            found[name] = "/"
    return found


@pytest.fixture
def places(project: Path) -> tuple[Path, Path]:
    """`p`, the folder `init` is run in, and `outside` beside it holding a victim file."""
    (project / "p").mkdir()
    (project / "outside" / "gh").mkdir(parents=True)
    (project / "outside" / "victim.toml").write_text(VICTIM)
    return project / "p", project / "outside"


def _refused(cli: Cli, folder: Path, *args: str) -> str:
    result = cli("init", ".", *args, cwd=folder)
    assert result.code == 2, result.out + result.err
    assert result.out == ""
    assert result.err.startswith("error:")
    assert len(result.err.strip().splitlines()) == 1, result.err
    return result.err


def test_a_symlinked_pyproject_is_refused_and_never_appended_to(
    cli: Cli, places: tuple[Path, Path]
) -> None:
    folder, outside = places
    (folder / "pyproject.toml").symlink_to("../outside/victim.toml")
    (folder / ".github").symlink_to("../outside/gh")
    before, elsewhere = _tree(folder), _tree(outside)
    err = _refused(cli, folder)
    assert "pyproject.toml is a symlink" in err
    assert "nothing written" in err
    assert (_tree(folder), _tree(outside)) == (before, elsewhere)
    assert (outside / "victim.toml").read_text() == VICTIM


@pytest.mark.parametrize("name", [".github", "tests", "golden", "contracts", "runners", "acme"])
def test_a_symlinked_folder_leading_outside_is_refused(
    cli: Cli, places: tuple[Path, Path], name: str
) -> None:
    folder, outside = places
    (folder / name).symlink_to("../outside/gh")
    before, elsewhere = _tree(folder), _tree(outside)
    err = _refused(cli, folder, *(("--package", "acme") if name == "acme" else ()))
    assert f"refusing to write {name}/" in err
    assert "outside the project folder" in err
    assert (_tree(folder), _tree(outside)) == (before, elsewhere)
    assert _tree(outside / "gh") == {}


@pytest.mark.parametrize("target", ["../outside/victim.toml", "../outside/nowhere"])
def test_a_symlinked_gitignore_is_refused_before_anything_is_written(
    cli: Cli, places: tuple[Path, Path], target: str
) -> None:
    folder, outside = places
    (folder / ".gitignore").symlink_to(target)
    before, elsewhere = _tree(folder), _tree(outside)
    err = _refused(cli, folder)
    assert ".gitignore is a symlink" in err
    assert (_tree(folder), _tree(outside)) == (before, elsewhere)


def test_a_file_where_a_folder_goes_is_refused_before_anything_is_written(
    cli: Cli, places: tuple[Path, Path]
) -> None:
    folder, _ = places
    (folder / ".github").write_text("not a folder")
    err = _refused(cli, folder)
    assert "cannot write .github/workflows/jobforge.yml: .github is not a folder" in err
    assert _tree(folder) == {".github": "not a folder"}


def test_a_symlinked_folder_inside_the_project_is_written_into(
    cli: Cli, places: tuple[Path, Path]
) -> None:
    folder, _ = places
    (folder / "cases").mkdir()
    (folder / "golden").symlink_to("cases")
    result = cli("init", ".", cwd=folder)
    assert result.code == 0, result.out + result.err
    assert (folder / "cases" / "example.triage" / "urgent-enterprise.json").is_file()


def test_a_package_name_too_long_for_a_file_name_is_one_line(
    cli: Cli, places: tuple[Path, Path]
) -> None:
    folder, _ = places
    err = _refused(cli, folder, "--package", "a" * 300)
    assert "is 300 characters long" in err
    assert _tree(folder) == {}


def test_appending_never_follows_a_symlink_planted_meanwhile(tmp_path: Path) -> None:
    victim = tmp_path / "victim.toml"
    victim.write_text(VICTIM)
    (tmp_path / "pyproject.toml").symlink_to(victim)
    with pytest.raises(OSError, match="symbolic links"):
        _write(tmp_path / "pyproject.toml", "[tool.jobforge]\n", "added")
    with pytest.raises(FileExistsError):
        _write(tmp_path / "pyproject.toml", "[tool.jobforge]\n", "wrote")
    assert victim.read_text() == VICTIM
