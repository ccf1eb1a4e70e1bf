"""The filesystem backend of the artifact store and writing artifacts out as files
(`jobforge.queue.store`, `jobforge.queue.artifact_files`): round trips, tenants apart, hostile
tenants, hashes and names refused before any path is made, atomic writes, corruption caught on
read, symlinks and existing files."""

from __future__ import annotations

import os
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from jobforge import errors
from jobforge.queue.artifact_files import Wanted, check_name, write_all
from jobforge.queue.blobs import CHUNK_BYTES, digest
from jobforge.queue.store import FilesystemStore, MemoryStore


@pytest.fixture
def store(tmp_path: Path) -> FilesystemStore:
    return FilesystemStore(tmp_path / "blobs")


def test_a_blob_round_trips_and_is_stored_once_per_tenant(store: FilesystemStore) -> None:
    data = b"x" * (CHUNK_BYTES * 2 + 5)
    sha = store.put("acme", data)
    assert sha == digest(data)
    assert store.put("acme", data) == sha  # the same bytes again: nothing new
    assert store.get("acme", sha) == data
    assert [len(c) for c in store.chunks("acme", sha)] == [CHUNK_BYTES, CHUNK_BYTES, 5]
    path = store.root / "acme" / sha[7:9] / sha[7:]
    assert path.read_bytes() == data
    assert store.exists("acme", sha)
    assert not store.exists("globex", sha)  # never shared between tenants
    with pytest.raises(errors.ArtifactNotFound, match=f"no artifact {sha} for tenant globex"):
        store.get("globex", sha)
    assert [p.name for p in path.parent.iterdir()] == [path.name]  # no temporary left


@settings(max_examples=30, deadline=None)
@given(data=st.binary(max_size=4096))
def test_any_bytes_round_trip(tmp_path_factory: pytest.TempPathFactory, data: bytes) -> None:
    store = FilesystemStore(tmp_path_factory.mktemp("any"))
    assert store.get("t", store.put("t", data)) == data


@pytest.mark.parametrize(
    "tenant", ["..", ".", "", "a/b", "../acme", "a\x00b", "x" * 129, "tenant b", "é"]
)
def test_hostile_tenants_are_refused_before_any_path_is_made(
    store: FilesystemStore, tenant: str
) -> None:
    with pytest.raises(errors.ArtifactError, match="is not a valid tenant id"):
        store.put(tenant, b"data")
    with pytest.raises(errors.ArtifactError, match="is not a valid tenant id"):
        store.exists(tenant, digest(b"data"))
    assert not store.root.exists()


@pytest.mark.parametrize(
    "sha",
    ["sha256:" + "A" * 64, "0" * 64, "sha256:" + "0" * 63, "sha256:../../../etc/passwd",
     "sha256:" + "0" * 64 + "/x", "md5:" + "0" * 32],
)  # fmt: skip
def test_hostile_hashes_are_refused(store: FilesystemStore, sha: str) -> None:
    with pytest.raises(errors.ArtifactError, match="is not a sha256"):
        store.get("acme", sha)


def test_a_symlinked_tenant_folder_is_not_followed(store: FilesystemStore, tmp_path: Path) -> None:
    store.root.mkdir()
    (tmp_path / "elsewhere").mkdir()
    (store.root / "acme").symlink_to(tmp_path / "elsewhere")
    with pytest.raises(errors.ArtifactError, match="is a symlink"):
        store.put("acme", b"data")
    assert list((tmp_path / "elsewhere").iterdir()) == []


def test_a_failed_write_leaves_nothing_behind(
    store: FilesystemStore, monkeypatch: pytest.MonkeyPatch
) -> None:
    def refuse(src: str, dst: str) -> None:
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(os, "replace", refuse)
    with pytest.raises(errors.ArtifactError, match="No space left on device"):
        store.put("acme", b"data")
    assert [p for p in store.root.rglob("*") if p.is_file()] == []


def test_a_corrupt_file_is_refused_after_streaming(store: FilesystemStore) -> None:
    sha = store.put("acme", b"the original bytes")
    path = store.root / "acme" / sha[7:9] / sha[7:]
    path.write_bytes(b"the tampered bytes")
    with pytest.raises(errors.ArtifactCorrupt, match=r"the stored bytes hash to sha256:"):
        store.get("acme", sha)


@pytest.mark.parametrize(
    "name", ["../x", "/abs", "a/../b", "a//b", "./a", "a/.", "", "a\\b", "a\nb", "a/", "x" * 201]
)
def test_names_that_could_leave_the_folder_are_refused(name: str) -> None:
    with pytest.raises(errors.ArtifactError, match="refusing artifact name"):
        check_name(name)


@pytest.mark.parametrize("name", ["report.md", "out/deep/file.bin", "_x", ".hidden", "@logs.jsonl"])
def test_plain_names_pass(name: str) -> None:
    assert check_name(name) == name


def _wanted(store: FilesystemStore, **files: bytes) -> list[Wanted]:
    return [Wanted(name.replace("__", "/"), store.put("acme", data), len(data))
            for name, data in files.items()]  # fmt: skip


def test_write_all_writes_each_file_and_keeps_existing_ones(
    store: FilesystemStore, tmp_path: Path
) -> None:
    wanted = _wanted(store, a__b=b"deep", top=b"top")
    out = tmp_path / "out"
    written = write_all(store, "acme", wanted, out, force=False)
    assert [(w.name, w.size) for w in written] == [("a/b", 4), ("top", 3)]
    assert (out / "a" / "b").read_bytes() == b"deep"
    (out / "top").write_bytes(b"mine")
    with pytest.raises(errors.ArtifactError, match="exists: give --force"):
        write_all(store, "acme", wanted, out, force=False)
    assert (out / "top").read_bytes() == b"mine"
    write_all(store, "acme", wanted, out, force=True)
    assert (out / "top").read_bytes() == b"top"


def test_write_all_refuses_symlinks_even_with_force(store: FilesystemStore, tmp_path: Path) -> None:
    out, elsewhere = tmp_path / "out", tmp_path / "elsewhere"
    out.mkdir()
    elsewhere.mkdir()
    (out / "a").symlink_to(elsewhere)
    with pytest.raises(errors.ArtifactError, match="is a symlink"):
        write_all(store, "acme", _wanted(store, a__b=b"x"), out, force=True)
    (out / "top").symlink_to(elsewhere / "top")
    with pytest.raises(errors.ArtifactError, match="is a symlink"):
        write_all(store, "acme", _wanted(store, top=b"x"), out, force=True)
    assert list(elsewhere.iterdir()) == []


def test_write_all_refuses_two_artifacts_of_one_name(
    store: FilesystemStore, tmp_path: Path
) -> None:
    twice = _wanted(store, top=b"x") * 2
    with pytest.raises(errors.ArtifactError, match="two artifacts have the same name"):
        write_all(store, "acme", twice, tmp_path / "out", force=False)


def test_a_size_that_differs_from_the_record_leaves_no_file(
    store: FilesystemStore, tmp_path: Path
) -> None:
    (wanted,) = _wanted(store, top=b"abc")
    lying = Wanted(wanted.name, wanted.sha256, 99)
    with pytest.raises(errors.ArtifactCorrupt, match="3 bytes read, the run recorded 99"):
        write_all(store, "acme", [lying], tmp_path / "out", force=False)
    assert [p for p in (tmp_path / "out").rglob("*") if p.is_file()] == []


def test_the_memory_store_verifies_what_it_was_handed() -> None:
    store = MemoryStore()
    sha = store.put("acme", b"abc")
    assert store.get("acme", sha) == b"abc"
    assert not store.exists("globex", sha)
    store.add("acme", digest(b"claimed"), b"actual")
    with pytest.raises(errors.ArtifactCorrupt):
        store.get("acme", digest(b"claimed"))
    with pytest.raises(errors.ArtifactError, match="is not a sha256"):
        store.add("acme", "sha256:nope", b"x")
