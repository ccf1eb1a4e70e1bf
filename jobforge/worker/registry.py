"""Handlers by job type. A worker claims only the types its registry has handlers for."""

from __future__ import annotations

import inspect
import re
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import Any, TypeVar

from jobforge import errors

F = TypeVar("F", bound=Callable[..., Any])

_TYPE = re.compile(r"[a-z0-9._-]{1,200}")

#: `handler(payload, ctx)`, plain or `async def`; what it returns is the job's result.
Handler = Callable[..., Any]
#: Runs when a job is canceled while its handler runs: `on_cancel(payload, ctx)`, plain or async.
Compensation = Callable[..., Any]
#: Turns a stored payload into the handler's input; raising means the input is invalid.
InputParser = Callable[[dict[str, Any]], Any]


@dataclass(frozen=True, slots=True)
class HandlerSpec:
    type: str
    fn: Handler
    is_async: bool
    timeout_s: float | None = None
    on_cancel: Compensation | None = None
    parse_input: InputParser | None = None
    #: (base, cap) seconds of the retry backoff of this type's jobs; None: the client's.
    backoff_s: tuple[float, float] | None = None
    #: run only jobs whose signatures verify (a runner's `signed=True`)
    signed: bool = False
    #: the scopes a job's policy token must grant (a runner's `requires_scopes`)
    requires_scopes: tuple[str, ...] = ()


class Registry:
    """A mapping of job type to handler, filled by `register` or the `handler` decorator."""

    def __init__(self) -> None:
        self._specs: dict[str, HandlerSpec] = {}

    def register(
        self,
        type: str,
        fn: Handler,
        *,
        timeout_s: float | None = None,
        on_cancel: Compensation | None = None,
        parse_input: InputParser | None = None,
        backoff_s: tuple[float, float] | None = None,
        signed: bool = False,
        requires_scopes: tuple[str, ...] = (),
    ) -> HandlerSpec:
        if not isinstance(type, str) or not _TYPE.fullmatch(type):
            raise errors.ConfigurationError(
                f"job type {type!r} is invalid: use 1-200 of [a-z0-9._-]"
            )
        if not callable(fn):
            raise errors.ConfigurationError(f"the handler for {type!r} is not callable: {fn!r}")
        if timeout_s is not None and not timeout_s > 0:
            raise errors.ConfigurationError(f"the timeout of {type!r} must be positive")
        if backoff_s is not None and not (len(backoff_s) == 2 and 0 < backoff_s[0] <= backoff_s[1]):
            raise errors.ConfigurationError(
                f"the backoff of {type!r} must be (base, cap) seconds with 0 < base <= cap, "
                f"not {backoff_s!r}"
            )
        existing = self._specs.get(type)
        if existing is not None and existing.fn is not fn:
            raise errors.ConfigurationError(
                f"job type {type!r} already has a handler: {_name(existing.fn)}"
            )
        spec = HandlerSpec(
            type=type,
            fn=fn,
            is_async=inspect.iscoroutinefunction(fn),
            timeout_s=timeout_s,
            on_cancel=on_cancel,
            parse_input=parse_input,
            backoff_s=backoff_s,
            signed=signed,
            requires_scopes=tuple(requires_scopes),
        )
        self._specs[type] = spec
        return spec

    def handler(
        self,
        type: str,
        *,
        timeout_s: float | None = None,
        on_cancel: Compensation | None = None,
        parse_input: InputParser | None = None,
    ) -> Callable[[F], F]:
        """Decorator form of `register`."""

        def decorate(fn: F) -> F:
            self.register(
                type, fn, timeout_s=timeout_s, on_cancel=on_cancel, parse_input=parse_input
            )
            return fn

        return decorate

    def update(self, other: Registry) -> None:
        for spec in other:
            self.register(
                spec.type,
                spec.fn,
                timeout_s=spec.timeout_s,
                on_cancel=spec.on_cancel,
                parse_input=spec.parse_input,
                backoff_s=spec.backoff_s,
                signed=spec.signed,
                requires_scopes=spec.requires_scopes,
            )

    def get(self, type: str) -> HandlerSpec:
        return self._specs[type]

    def types(self, only: Iterable[str] | None = None) -> list[str]:
        """The registered types, narrowed to `only` when given (unknown names are an error)."""
        if only is None:
            return sorted(self._specs)
        wanted = list(only)
        unknown = [t for t in wanted if t not in self._specs]
        if unknown:
            known = ", ".join(sorted(self._specs)) or "none"
            raise errors.ConfigurationError(
                f"no handler for job type(s) {', '.join(unknown)} (registered: {known})"
            )
        return sorted(set(wanted))

    def __iter__(self) -> Any:
        return iter(list(self._specs.values()))

    def __len__(self) -> int:
        return len(self._specs)

    def __contains__(self, type: object) -> bool:
        return type in self._specs


def _name(fn: Handler) -> str:
    return f"{getattr(fn, '__module__', '?')}.{getattr(fn, '__qualname__', repr(fn))}"


#: The registry `jobforge worker --runners MODULE` uses: modules register into it on import.
default_registry = Registry()
handler = default_registry.handler
