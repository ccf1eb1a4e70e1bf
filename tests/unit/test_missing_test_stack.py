"""What a test-stack feature says when the test stack is not installed (`pip install jobforge`
alone): one line naming the feature, the missing package and `pip install 'jobforge[testing]'`.
A missing package is simulated with None in sys.modules; tests/e2e/test_cli_core_install.py runs
the commands and the worker in fresh interpreters without the test stack."""

from __future__ import annotations

import sys

import pytest

from jobforge import errors
from jobforge.golden import compare
from jobforge.provision import docker

INSTALL = "pip install 'jobforge[testing]'"


def test_the_message_names_the_feature_the_package_and_the_extra() -> None:
    missing = ModuleNotFoundError("No module named 'syrupy.extensions'", name="syrupy.extensions")
    error = errors.MissingTestStack.needed_by("RunRecordSnapshot", missing)
    assert (
        str(error) == f"RunRecordSnapshot needs the test stack (syrupy is not installed): {INSTALL}"
    )
    assert isinstance(error, ImportError)  # pytest.importorskip and `except ImportError` see it
    assert isinstance(error, errors.ConfigurationError)
    assert error.exit_code == 2
    other = ImportError("cannot import name 'DeepDiff' from 'deepdiff'")
    assert str(errors.MissingTestStack.needed_by("replay", other)) == (
        f"replay needs the test stack (cannot import name 'DeepDiff' from 'deepdiff'): {INSTALL}"
    )


def test_comparing_without_deepdiff(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(sys.modules, "deepdiff", None)  # `import deepdiff` raises ImportError
    with pytest.raises(errors.MissingTestStack) as caught:
        compare.require_deepdiff("jobforge certify")
    assert str(caught.value) == (
        f"jobforge certify needs the test stack (deepdiff is not installed): {INSTALL}"
    )
    assert caught.value.exit_code == 2


def test_the_docker_provider_without_testcontainers(monkeypatch: pytest.MonkeyPatch) -> None:
    """Chosen explicitly, the Docker path says what to install; `auto` is not blocked by it."""
    for name in ("testcontainers", "testcontainers.postgres", "testcontainers.community",
                 "testcontainers.community.postgres"):  # fmt: skip
        monkeypatch.setitem(sys.modules, name, None)  # even if an earlier test imported them
    with pytest.raises(errors.MissingTestStack) as caught:
        docker.start_docker()
    assert str(caught.value) == (
        f"provider 'docker' needs the test stack (testcontainers is not installed): {INSTALL}"
    )
    monkeypatch.setitem(sys.modules, "docker", None)
    usable, why = docker._probe()
    assert not usable
    assert why == f"the docker Python package is not installed ({INSTALL})"
