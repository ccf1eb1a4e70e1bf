"""Project names checked in Python as the jobs table's CHECK checks them (migrations/0002:
`^[A-Za-z0-9._-]+$`, at most 128): `NewJob.project`, a client's scope, the CLI's --project."""

from __future__ import annotations

import re

import pytest
from hypothesis import given
from hypothesis import strategies as st
from pydantic import ValidationError

from jobforge import errors, validation
from jobforge.cli.options import PROJECT_ENV, chosen_project
from jobforge.queue import NewJob
from jobforge.queue.projects import checked, problem

#: The column's CHECK, as written in migrations/0002.
COLUMN = re.compile(r"^[A-Za-z0-9._-]+$")


def _column_accepts(value: str) -> bool:
    return bool(COLUMN.search(value)) and len(value) <= 128 and "\n" not in value


@given(st.one_of(st.text(max_size=140),
                 st.from_regex(r"\A[A-Za-z0-9._-]{1,140}\Z", fullmatch=True)))  # fmt: skip
def test_python_agrees_with_the_column(value: str) -> None:
    assert (problem(value) is None) == _column_accepts(value)


@pytest.mark.parametrize("value", ["default", "a", "A.b_c-9", "x" * 128, "..", "-"])
def test_names_the_column_takes(value: str) -> None:
    assert problem(value) is None
    assert NewJob(type="t", payload={}, project=value).project == value


@pytest.mark.parametrize(
    ("value", "message"),
    [
        ("", "project: '' is not a project name (1 to 128 of A-Z a-z 0-9 . _ -)"),
        ("a b", "project: 'a b' is not a project name (1 to 128 of A-Z a-z 0-9 . _ -)"),
        ("a/b", "project: 'a/b' is not a project name"),
        ("é", "project: 'é' is not a project name"),
        ("a\n", "project: 'a\\n' is not a project name"),
        ("x" * 129, "project: is 129 characters, over the limit of 128"),
    ],
)
def test_a_bad_name_is_one_line_naming_the_field(value: str, message: str) -> None:
    with pytest.raises(ValidationError) as caught:
        NewJob(type="t", payload={}, project=value)
    text = validation.summary(caught.value)
    assert text.startswith(message)
    assert "\n" not in text
    with pytest.raises(errors.ConfigurationError) as scoped:
        checked(value)
    assert str(scoped.value).startswith(message.replace("project: ", "project ", 1))


def test_no_project_is_none() -> None:
    assert NewJob(type="t", payload={}).project is None
    assert checked(None) is None


def test_the_cli_takes_the_option_then_the_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv(PROJECT_ENV, raising=False)
    assert chosen_project(None) is None
    assert chosen_project("a") == "a"
    monkeypatch.setenv(PROJECT_ENV, "b")
    assert chosen_project(None) == "b"
    assert chosen_project("a") == "a"
    monkeypatch.setenv(PROJECT_ENV, "")  # set but empty: refused, never "every project"
    with pytest.raises(errors.ConfigurationError, match=f"^{PROJECT_ENV} '' is not a project"):
        chosen_project(None)
    with pytest.raises(errors.ConfigurationError, match=r"^--project 'a b' is not a project"):
        chosen_project("a b")
