"""The contract as a file: the strict, versioned model behind `contracts/<runner_id>.json`.

Separate from the declaration on purpose: the file format must stay stable and strict
(`extra="forbid"`) while the Python declaration may grow conveniences.

Beside the JSON Schemas (what pydantic *writes* for the models, which changes with pydantic's
version), a lock records the generator's versions and a *fingerprint* of every field, rendered
by jobforge itself from `model_fields` (`fingerprint`): what the model *says*, independent of how
any pydantic version spells it as JSON Schema. The drift engine uses them to tell a difference
the generator alone made from a change to the model.
"""

from __future__ import annotations

import dataclasses
import decimal
import enum
import json
import re
import types
import typing
from collections.abc import Iterator
from typing import Any, Literal

import pydantic
import pydantic_core
from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    RootModel,
    SerializerFunctionWrapHandler,
    model_serializer,
    model_validator,
)
from pydantic.fields import FieldInfo

from jobforge.contracts.declare import LIMIT_MAX, RATE_MIN, RunnerDef

FORMAT: Literal["jobforge.contract/1"] = "jobforge.contract/1"


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class GuaranteesModel(_Strict):
    input_snapshot: bool
    decision_trace: bool
    output_artifact: bool
    replayable: bool


class RetryModel(_Strict):
    base_s: float = Field(gt=0)
    cap_s: float = Field(gt=0)


class QueueLimitsModel(_Strict):
    """A runner's declared queue limits, as the database will hold them: the burst is always
    written when there is a rate (the rate, at least 1, when the declaration left it out), so
    the lock says what `jobforge limits apply` writes."""

    max_running: int | None = Field(default=None, ge=1, le=LIMIT_MAX)
    rate_per_s: float | None = Field(default=None, ge=RATE_MIN, le=LIMIT_MAX)
    burst: float | None = Field(default=None, ge=1, le=LIMIT_MAX)

    @model_validator(mode="after")
    def _a_limit(self) -> QueueLimitsModel:
        if self.max_running is None and self.rate_per_s is None:
            raise ValueError("queue limits need max_running or rate_per_s")
        if (self.rate_per_s is None) != (self.burst is None):
            raise ValueError("a burst goes with a rate_per_s, and a rate_per_s with its burst")
        return self


class FieldPrint(_Strict):
    """One field (or, at the key "", the model itself) as jobforge renders it."""

    shape: str  #: what validates or is produced: type, constraints, default, validators
    doc: str = ""  #: what only documents it: title, description, examples, deprecated


class Fingerprints(_Strict):
    """Field fingerprints per side, keyed by the chain of JSON property names from the model
    (`lines/unit_price`, `~1` and `~0` escaping `/` and `~`); "" is the model itself."""

    input: dict[str, FieldPrint]
    output: dict[str, FieldPrint]


class Contract(_Strict):
    """A runner's contract, as locked in `contracts/<runner_id>.json`."""

    format: Literal["jobforge.contract/1"] = FORMAT
    runner_id: str = Field(pattern=r"^[a-z0-9._-]{1,200}$")
    version: str
    input_schema: dict[str, Any]
    output_schema: dict[str, Any]
    guarantees: GuaranteesModel
    trace_keys: list[str]
    artifacts: list[str]
    timeout_s: float | None = Field(default=None, gt=0)
    max_attempts: int = Field(ge=1, le=1000)
    retry: RetryModel
    #: key names redacted from stored records beyond the name rules, and exempted from them
    secret_keys: list[str] = Field(default_factory=list)
    public_keys: list[str] = Field(default_factory=list)
    #: the versions of what wrote the schemas, e.g. {"pydantic": "2.13.4", "pydantic_core": …}
    #: (absent in locks written before jobforge recorded it)
    generator: dict[str, str] | None = None
    fingerprints: Fingerprints | None = None
    #: the job type's queue limits (`@runner(limits=...)`); absent when none are declared, so a
    #: lock without them reads, and is written, as before they existed
    queue_limits: QueueLimitsModel | None = None
    #: only signed jobs run (`@runner(signed=True)`); the scopes a job's policy token must
    #: grant. Left out when off or empty, so older locks read, and are written, as before.
    signed: bool = False
    requires_scopes: list[str] = Field(default_factory=list)

    @model_serializer(mode="wrap")
    def _leave_out_no_limits(self, handler: SerializerFunctionWrapHandler) -> dict[str, Any]:
        data: dict[str, Any] = handler(self)
        if data.get("queue_limits", 0) is None:
            del data["queue_limits"]
        if data.get("signed") is False:
            del data["signed"]
        if data.get("requires_scopes") == []:
            del data["requires_scopes"]
        return data


def generator_versions() -> dict[str, str]:
    """The schema generator of this process: pydantic and its core."""
    return {"pydantic": pydantic.VERSION, "pydantic_core": pydantic_core.__version__}


def contract_of(definition: RunnerDef) -> Contract:
    """The contract a declaration states. Lists are sorted: their order carries no meaning."""
    g = definition.guarantees
    return Contract(
        runner_id=definition.id,
        version=definition.version,
        input_schema=definition.input.model_json_schema(mode="validation"),
        output_schema=definition.output.model_json_schema(mode="serialization"),
        guarantees=GuaranteesModel(
            input_snapshot=g.input_snapshot,
            decision_trace=g.decision_trace,
            output_artifact=g.output_artifact,
            replayable=g.replayable,
        ),
        trace_keys=sorted(definition.trace_keys),
        artifacts=sorted(definition.artifacts),
        timeout_s=definition.timeout_s,
        max_attempts=definition.max_attempts,
        retry=RetryModel(base_s=definition.retry.base_s, cap_s=definition.retry.cap_s),
        secret_keys=sorted(definition.secret_keys),
        public_keys=sorted(definition.public_keys),
        queue_limits=_queue_limits(definition),
        signed=definition.signed,
        requires_scopes=sorted(definition.requires_scopes),
        generator=generator_versions(),
        fingerprints=Fingerprints(
            input=fingerprint(definition.input, "input"),
            output=fingerprint(definition.output, "output"),
        ),
    )


def _queue_limits(definition: RunnerDef) -> QueueLimitsModel | None:
    limits = definition.limits
    if limits is None:
        return None
    return QueueLimitsModel(max_running=limits.max_running, rate_per_s=limits.rate_per_s,
                            burst=limits.effective_burst)  # fmt: skip


# -- fingerprints -----------------------------------------------------------------------------
#
# Rendered only from what pydantic has kept stable since 2.0: `model_fields` (annotation,
# metadata, the public FieldInfo attributes), `model_config`, `model_computed_fields` and the
# decorators' names. Types are rendered by this module (typing.get_origin/get_args), never by
# pydantic's schema generator. Metadata objects are rendered by their public attributes
# (`ge=0`, `decimal_places=2`), by class name only where that name is public API (a validator
# kind), so that a metadata class renamed or merged inside pydantic changes nothing.

#: FieldInfo attributes that change what validates or is produced.
_SHAPE_ATTRIBUTES = ("validation_alias", "serialization_alias", "discriminator", "strict",
                     "exclude", "json_schema_extra", "union_mode", "coerce_numbers_to_str",
                     "allow_inf_nan", "fail_fast")  # fmt: skip
#: FieldInfo attributes that only document.
_DOC_ATTRIBUTES = ("title", "description", "examples", "deprecated")
#: Limits that keep a pathological model graph from rendering forever.
_MAX_DEPTH, _MAX_ENTRIES = 24, 4000


def chain_key(chain: tuple[str, ...]) -> str:
    """`("lines", "unit_price")` → "lines/unit_price" (JSON Pointer escaping)."""
    return "/".join(p.replace("~", "~0").replace("/", "~1") for p in chain)


def fingerprint(model: type[BaseModel], side: Literal["input", "output"]) -> dict[str, FieldPrint]:
    """Every field reachable from `model` through nested models, by property chain."""
    found: dict[str, tuple[set[str], set[str]]] = {}
    _collect(model, (), side, found, frozenset())
    joined = {key: (" | ".join(sorted(shapes)), " | ".join(sorted(d for d in docs if d)))
              for key, (shapes, docs) in found.items()}  # fmt: skip
    return {key: FieldPrint(shape=shape, doc=doc) for key, (shape, doc) in sorted(joined.items())}


def _add(found: dict[str, tuple[set[str], set[str]]], chain: tuple[str, ...], shape: str,
         doc: str) -> None:  # fmt: skip
    shapes, docs = found.setdefault(chain_key(chain), (set(), set()))
    shapes.add(shape)
    docs.add(doc)


def _collect(model: type[BaseModel], chain: tuple[str, ...], side: str,
             found: dict[str, tuple[set[str], set[str]]],
             active: frozenset[type[Any]]) -> None:  # fmt: skip
    if not chain:
        _add(found, chain, _model_shape(model), _model_doc(model))
    if model in active or len(chain) > _MAX_DEPTH or len(found) > _MAX_ENTRIES:
        return  # a recursive model: deeper paths are judged by the chain above them
    active = active | {model}
    if issubclass(model, RootModel):  # its schema is its root's: nested fields sit right here
        for nested in _models_in(model.model_fields["root"].annotation):
            _collect(nested, chain, side, found, active)
        return
    validators = _field_decorators(model)
    for name, info in model.model_fields.items():
        key = _property_name(name, info, side)
        shape = "; ".join(filter(None, [
            _annotation(info.annotation, info.metadata),
            "required" if info.is_required() else f"default={_default(info)}",
            *(f"{a}={_value(getattr(info, a, None))}" for a in _SHAPE_ATTRIBUTES
              if getattr(info, a, None) is not None),
            *sorted(validators.get(name, ())),
        ]))  # fmt: skip
        doc = "; ".join([
            *(f"{a}={_value(getattr(info, a, None))}" for a in _DOC_ATTRIBUTES
              if getattr(info, a, None) is not None),
            *(f"[{_model_doc(m)}]" for m in _models_in(info.annotation)),
        ])  # fmt: skip
        _add(found, (*chain, key), shape, doc)
        for nested in _models_in(info.annotation):
            _collect(nested, (*chain, key), side, found, active)
    if side == "output":  # computed fields are part of what is serialized
        for name, computed in getattr(model, "model_computed_fields", {}).items():
            alias = getattr(computed, "alias", None)
            key = alias if isinstance(alias, str) else name
            shape = f"computed {_annotation(getattr(computed, 'return_type', None), [])}"
            doc = "; ".join(f"{a}={_value(getattr(computed, a, None))}" for a in _DOC_ATTRIBUTES
                            if getattr(computed, a, None) is not None)  # fmt: skip
            _add(found, (*chain, key), shape, doc)
            for nested in _models_in(getattr(computed, "return_type", None)):
                _collect(nested, (*chain, key), side, found, active)


def _property_name(name: str, info: FieldInfo, side: str) -> str:
    """The name the field's JSON Schema property has on this side (as pydantic chooses it)."""
    alias: Any = info.validation_alias if side == "input" else info.serialization_alias
    if alias is None:
        alias = info.alias
    if isinstance(alias, str):
        return alias
    choices = getattr(alias, "choices", None)  # AliasChoices: its first one-name path
    for choice in choices or ():
        path = getattr(choice, "path", [choice])
        if isinstance(choice, str) or (len(path) == 1 and isinstance(path[0], str)):
            return choice if isinstance(choice, str) else str(path[0])
    return name


def _model_shape(model: type[BaseModel]) -> str:
    """The model itself: its configuration, model-level validators and serializers (its name
    is documentation: it reaches the schema only as a title and a `$defs` key)."""
    config = {k: v for k, v in dict(model.model_config).items() if k not in ("title",)}
    parts = ["model"]
    if config:
        parts.append("config " + ", ".join(f"{k}={_value(v)}" for k, v in sorted(config.items())))
    decorators = getattr(model, "__pydantic_decorators__", None)
    for kind in ("model_validators", "model_serializers"):
        modes = [getattr(getattr(d, "info", None), "mode", "") for d in
                 getattr(decorators, kind, {}).values()]  # fmt: skip
        parts += [f"{kind[6:-1]} ({mode})" for mode in sorted(modes)]  # names are no contract
    if issubclass(model, RootModel):
        info = model.model_fields["root"]
        parts.append(f"root {_annotation(info.annotation, info.metadata)}")
    for hook in ("__get_pydantic_json_schema__", "model_json_schema"):
        if hook in vars(model):  # a schema written by the model's own code
            parts.append(f"custom {hook}")
    return "; ".join(parts)


def _model_doc(model: type[BaseModel]) -> str:
    title = model.model_config.get("title")
    doc = [f"name={model.__qualname__}"] + ([f"title={_value(title)}"] if title else [])
    if model.__doc__ and model.__doc__ != getattr(BaseModel, "__doc__", None):
        doc.append(f"doc={_value(model.__doc__.strip())}")
    return "; ".join(doc)


def _field_decorators(model: type[BaseModel]) -> dict[str, list[str]]:
    """Field validators and serializers by the field they apply to ("*": every field)."""
    decorators = getattr(model, "__pydantic_decorators__", None)
    found: dict[str, list[str]] = {}
    for kind in ("field_validators", "field_serializers"):
        for decorator in getattr(decorators, kind, {}).values():
            info = getattr(decorator, "info", None)
            label = f"{kind[6:-1]} ({getattr(info, 'mode', '')})"  # renaming one changes nothing
            fields = tuple(getattr(info, "fields", ()))
            targets = model.model_fields if "*" in fields else fields
            for field_name in targets:
                found.setdefault(field_name, []).append(label)
    return found


def _models_in(annotation: Any) -> Iterator[type[BaseModel]]:
    """The pydantic models an annotation mentions (inside lists, unions, Annotated, …)."""
    if isinstance(annotation, type) and issubclass(annotation, BaseModel):
        yield annotation
        return
    for arg in typing.get_args(annotation):
        yield from _models_in(arg)


def _annotation(annotation: Any, metadata: Any) -> str:
    text = _type(annotation, frozenset())
    rendered = _metadata(metadata)
    return f"{text} [{', '.join(rendered)}]" if rendered else text


def _type(tp: Any, active: frozenset[int]) -> str:
    """A type as text, by jobforge's own rules (so pydantic's changes do not reach it)."""
    if tp is None or tp is type(None):
        return "None"
    if tp is Ellipsis:
        return "..."
    if id(tp) in active:
        return f"<recursive {getattr(tp, '__qualname__', '?')}>"
    active = active | {id(tp)}
    origin, args = typing.get_origin(tp), typing.get_args(tp)
    if origin is typing.Annotated:
        return f"{_type(args[0], active)} [{', '.join(_metadata(args[1:]))}]"
    if origin is Literal:
        return "Literal[" + ", ".join(sorted(_value(a) for a in args)) + "]"
    if origin is typing.Union or origin is types.UnionType:
        return " | ".join(sorted({_type(a, active) for a in args}))
    alias_value = getattr(tp, "__value__", None)  # `type X = ...` aliases: what they stand for
    if alias_value is not None and origin is None and not isinstance(tp, type):
        return _type(alias_value, active)
    if origin is not None:
        return f"{_name(origin)}[{', '.join(_type(a, active) for a in args)}]"
    if isinstance(tp, type) and issubclass(tp, BaseModel):
        return f"{{{_model_shape(tp)}}}"
    if isinstance(tp, type) and issubclass(tp, enum.Enum):
        values = ", ".join(sorted(_value(m.value) for m in tp))
        bases = [b.__name__ for b in tp.__mro__[1:] if b not in (enum.Enum, object)
                 and not issubclass(b, enum.Enum)]  # fmt: skip
        # by its values, not its name: renaming the class changes no accepted value
        return f"enum{'(' + ', '.join(bases) + ')' if bases else ''}[{values}]"
    if isinstance(tp, type) and dataclasses.is_dataclass(tp):
        fields = ", ".join(f"{f.name}: {_type(f.type, active)}" for f in dataclasses.fields(tp))
        return f"dataclass{{{fields}}}"
    if isinstance(tp, type) and typing.is_typeddict(tp):
        hints = typing.get_type_hints(tp, include_extras=True)
        required: frozenset[str] = getattr(tp, "__required_keys__", frozenset())
        fields = ", ".join(f"{k}{'' if k in required else '?'}: {_type(v, active)}"
                           for k, v in sorted(hints.items()))  # fmt: skip
        return f"typeddict{{{fields}}}"
    if isinstance(tp, typing.TypeVar):
        return f"~{tp.__name__}"
    return _name(tp)


def _name(tp: Any) -> str:
    module = getattr(tp, "__module__", "")
    name = getattr(tp, "__qualname__", None) or getattr(tp, "__name__", None) or repr(tp)
    return name if module in ("builtins", "typing", "collections.abc", "") else f"{module}.{name}"


def _metadata(items: Any) -> list[str]:
    """Constraint and validator metadata: `ge=0`, `AfterValidator(func=mod.check)`."""
    rendered: set[str] = set()
    for item in items or ():
        if isinstance(item, FieldInfo):
            rendered.update(_metadata(item.metadata))
            rendered.update(f"{a}={_value(getattr(item, a, None))}"
                            for a in (*_SHAPE_ATTRIBUTES, *_DOC_ATTRIBUTES, "alias")
                            if getattr(item, a, None) is not None)  # fmt: skip
            continue
        attributes = _public_attributes(item)
        cls = type(item)
        anonymous = cls.__name__.startswith("_") or cls.__module__.startswith("annotated_types")
        if anonymous and attributes:
            rendered.update(f"{k}={_value(v)}" for k, v in attributes.items())
        else:
            inner = ", ".join(f"{k}={_value(v)}" for k, v in sorted(attributes.items()))
            rendered.add(f"{cls.__name__}({inner})")
    return sorted(rendered)


def _public_attributes(item: Any) -> dict[str, Any]:
    if dataclasses.is_dataclass(item) and not isinstance(item, type):
        names = [f.name for f in dataclasses.fields(item)]
    elif hasattr(item, "__dict__"):
        names = list(vars(item))
    else:
        names = [s for c in type(item).__mro__ for s in getattr(c, "__slots__", ())]
    values = {n: getattr(item, n, None) for n in names if not n.startswith("_")}
    return {k: v for k, v in values.items() if v is not None}


def _default(info: FieldInfo) -> str:
    factory = info.default_factory
    if factory is not None:
        return f"factory {_name(factory)}"
    return _value(info.default)


def _value(value: Any) -> str:
    """A value as stable text: JSON where it has a JSON form, a qualified name for code."""
    if isinstance(value, re.Pattern):
        value = value.pattern
    if isinstance(value, enum.Enum):
        value = value.value
    if isinstance(value, type) or callable(value):
        return _name(value)
    if isinstance(value, float) and value.is_integer():
        value = int(value)
    if isinstance(value, decimal.Decimal):
        return f"Decimal({str(value)!r})"
    try:
        plain = pydantic_core.to_jsonable_python(value)
        return json.dumps(plain, sort_keys=True, ensure_ascii=False)
    except (TypeError, ValueError, pydantic_core.PydanticSerializationError):
        return repr(value)
