"""`jsonfile.write_new` and `bundle.export` when a file cannot be written (security review,
[3/10]): a name too long for the file system, a folder that is a file, a file system without hard
links — each a `ConfigurationError` naming the file and the reason, never a bare OSError, and
never taken for "a different file is there"; a name that fits gets a temporary name that fits."""

from __future__ import annotations

import errno
import os
from pathlib import Path

import pytest

from jobforge import errors
from jobforge.jsonfile import write_new
from jobforge.replay.bundle import export, load_bundle

BUNDLE = Path(__file__).resolve().parents[2] / "examples" / "bundles" / "ops.scan-job1-a1.json"


def test_a_name_too_long_is_one_error_not_a_kept_file(tmp_path: Path) -> None:
    path = tmp_path / ("a" * 300 + ".json")
    with pytest.raises(errors.ConfigurationError, match=r"cannot write .*: File name too long"):
        write_new(path, "x")
    assert list(tmp_path.iterdir()) == []


def test_a_long_name_that_fits_is_written(tmp_path: Path) -> None:
    path = tmp_path / ("a" * 245 + ".json")  # 250 bytes: its temporary name must fit too
    assert write_new(path, "x") == "written"
    assert [p.name for p in tmp_path.iterdir()] == [path.name]


def test_a_folder_that_is_a_file_is_one_error(tmp_path: Path) -> None:
    (tmp_path / "bundles").write_text("a file")
    with pytest.raises(errors.ConfigurationError, match=r"cannot write .*bundles/a\.json: Not a"):
        write_new(tmp_path / "bundles" / "a.json", "x")


def test_a_file_system_without_hard_links_is_one_error(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    def no_link(src: object, dst: object) -> None:
        raise OSError(errno.EPERM, os.strerror(errno.EPERM))

    monkeypatch.setattr(os, "link", no_link)
    with pytest.raises(errors.ConfigurationError, match=r"a\.json: its file system has no hard"):
        write_new(tmp_path / "a.json", "x")
    assert list(tmp_path.iterdir()) == []  # the temporary file is gone


def test_export_names_the_file_it_cannot_write(tmp_path: Path) -> None:
    bundle = load_bundle(BUNDLE)
    (tmp_path / "file").write_text("a file")
    with pytest.raises(errors.ConfigurationError, match=r"cannot write .*file/ops\.scan-job1-a1"):
        export(bundle, 1, bundles=tmp_path / "file")
    with pytest.raises(errors.ConfigurationError, match="cannot make the folder"):
        export(bundle, 1, bundles=tmp_path / "file" / "deeper")
    with pytest.raises(errors.ConfigurationError, match="cannot make the folder"):
        export(bundle, 1, golden=tmp_path / "file")
    (tmp_path / "bundles" / "ops.scan-job1-a1-run1.json").mkdir(parents=True)  # not a file
    with pytest.raises(errors.ConfigurationError, match=r"cannot write .*ops\.scan-job1-a1-run1"):
        export(bundle, 1, bundles=tmp_path / "bundles", overwrite=True)
