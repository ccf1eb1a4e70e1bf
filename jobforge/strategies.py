"""Hypothesis strategies for runner inputs, built from a runner's input model.

`st.builds`/`st.from_type` per field (hypothesis-jsonschema does not work with current
hypothesis), then filtered through the model, so what comes out is valid input, as the JSON a
job payload carries.
"""

from __future__ import annotations

from typing import Any

from hypothesis import strategies as st
from pydantic import BaseModel, ValidationError

from jobforge import errors
from jobforge.contracts import RUNNERS, RunnerDef

_ABSENT = object()


def model_inputs(model: type[BaseModel]) -> st.SearchStrategy[dict[str, Any]]:
    fields: dict[str, st.SearchStrategy[Any]] = {}
    for name, info in model.model_fields.items():
        # cast: newer pydantic types the annotation as a TypeForm, which from_type accepts
        annotation: Any = info.annotation
        strategy = st.from_type(annotation) if annotation is not None else st.none()
        fields[info.alias or name] = (
            strategy if info.is_required() else st.one_of(st.just(_ABSENT), strategy)
        )

    def valid(raw: dict[str, Any]) -> dict[str, Any] | None:
        payload = {k: v for k, v in raw.items() if v is not _ABSENT}
        try:
            return model.model_validate(payload).model_dump(mode="json")
        except (ValidationError, ValueError, TypeError):
            return None

    def present(payload: dict[str, Any] | None) -> dict[str, Any]:
        assert payload is not None
        return payload

    return st.fixed_dictionaries(fields).map(valid).filter(lambda p: p is not None).map(present)


def inputs(runner: str | RunnerDef) -> st.SearchStrategy[dict[str, Any]]:
    """Valid inputs of a declared runner (by id or definition)."""
    definition = RUNNERS.get(runner) if isinstance(runner, str) else runner
    if definition is None:
        known = ", ".join(sorted(RUNNERS)) or "none"
        raise errors.ConfigurationError(f"no runner {runner!r} is declared (declared: {known})")
    return model_inputs(definition.input)
