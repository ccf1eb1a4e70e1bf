"""A run manifest: one run record (jobforge.run/1) as a Markdown document for people (a ticket,
a review, an incident note): runner, job, attempt, status, timings, input and output with their
hashes, the decision trace, the artifacts with hashes and sizes, fingerprints, errors.

Everything in a record that a runner or its input chose (keys, values, reasons, artifact names,
error messages) is user data, and user data never becomes Markdown: in a table cell every
character Markdown or HTML gives a meaning to is escaped, and a line break becomes `<br>` (a
newline or a `|` would otherwise end the row or the cell); a block of JSON or text goes in a
code fence longer than any run of backticks inside it.
"""

from __future__ import annotations

import json
import re
import unicodedata
from collections.abc import Iterable, Sequence
from typing import Any

#: Characters with a meaning inside a line in CommonMark and GFM (emphasis, code, links, tables,
#: strikethrough, inline HTML, entities). A cell or an inline value never starts a line, so the
#: line-start ones (`#`, `-`, `+`, `1.`) mean nothing where it goes.
_SPECIAL = re.compile(r"([\\`*_\[\]|~<>&])")
_BREAK = re.compile(r"\r\n|\r|\n")
_HIDDEN = frozenset({"Cc", "Cf", "Zl", "Zp"})


def cell(value: Any) -> str:
    """`value` as text safe inside a Markdown table cell (and inline anywhere)."""
    text = value if isinstance(value, str) else json.dumps(value, ensure_ascii=False,
                                                           sort_keys=True)  # fmt: skip
    text = _SPECIAL.sub(r"\\\1", text)
    text = _BREAK.sub("<br>", text)
    # other control, format and separator characters are invisible, or a line break to some
    # reader (NEL, LS, PS), or reorder what is shown (bidi overrides): shown as \uXXXX
    return "".join(
        f"\\\\u{ord(c):04x}" if c != "\t" and unicodedata.category(c) in _HIDDEN else c
        for c in text
    )


def code(value: Any) -> str:
    """`value` as an inline code span (a hash, an id), or escaped text when it could not be one
    safely (anything `cell` would escape: a backtick, a pipe, a line break, an invisible
    character)."""
    text = str(value)
    return f"`{text}`" if text and cell(text) == text else cell(text)


def fenced(text: str, info: str = "") -> str:
    """`text` in a code fence that nothing inside it can close."""
    longest = max((len(m) for m in re.findall(r"`+", text)), default=0)
    fence = "`" * max(3, longest + 1)
    return f"{fence}{info}\n{text}\n{fence}"


def table(headers: Sequence[str], rows: Iterable[Sequence[Any]]) -> str:
    lines = ["| " + " | ".join(headers) + " |", "|" + "---|" * len(headers)]
    lines += ["| " + " | ".join(cell(v) for v in row) + " |" for row in rows]
    return "\n".join(lines)


def _pretty(canonical_text: str | None) -> str:
    if canonical_text is None:
        return ""
    try:
        return json.dumps(json.loads(canonical_text), indent=2, ensure_ascii=False)
    except ValueError:
        return canonical_text


def _json(value: Any) -> str:
    """A decision's value or reasons as JSON: a string stays quoted, so `"1"` and `1` differ."""
    return json.dumps(value, ensure_ascii=False, sort_keys=True)


def _size(size: Any) -> str:
    if not isinstance(size, int):
        return str(size)
    for unit, scale in (("GiB", 1 << 30), ("MiB", 1 << 20), ("KiB", 1 << 10)):
        if size >= scale:
            return f"{size} ({size / scale:.1f} {unit})"
    return str(size)


def render(record: dict[str, Any], *, job_id: int | None = None, tenant: str | None = None) -> str:
    """The manifest of `record` (a stored run record), as Markdown."""
    prov = record.get("provenance") or {}
    job = job_id if job_id is not None else prov.get("job_id")
    parts = [f"# Run of {cell(record.get('runner_id'))} {cell(record.get('runner_version'))}"]
    env = record.get("environment") or {}
    summary = [
        ("runner", record.get("runner_id")), ("runner version", record.get("runner_version")),
        ("job", job), ("attempt", prov.get("attempt")), ("status", record.get("status")),
        ("tenant", tenant or env.get("tenant_id")), ("trace id", env.get("trace_id")),
        ("worker", prov.get("worker")), ("recorded at", prov.get("recorded_at")),
        ("duration", None if prov.get("duration_ms") is None else f"{prov['duration_ms']} ms"),
        ("format", record.get("format")),
    ]  # fmt: skip
    parts.append(table(("field", "value"), [(k, "-" if v is None else v) for k, v in summary]))

    inp = record.get("input") or {}
    parts.append("## Input")
    parts.append(f"hash: {code(inp.get('sha256'))} (of the redacted canonical JSON)")
    parts.append(fenced(_pretty(inp.get("canonical")), "json"))

    parts.append("## Decisions")
    trace = record.get("trace") or []
    if trace:
        steps = [(n, s.get("key"), _json(s.get("value")), _json(s.get("why") or {}))
                 for n, s in enumerate(trace, 1)]  # fmt: skip
        parts.append(table(("#", "key", "value", "why"), steps))
    else:
        parts.append("none")
    parts.append(f"trace hash: {code(record.get('trace_sha256'))}")

    parts.append("## Output")
    output = record.get("output")
    if output:
        parts.append(f"hash: {code(output.get('sha256'))}")
        parts.append(fenced(_pretty(output.get("canonical")), "json"))
    else:
        parts.append(f"none (status {cell(record.get('status'))})")

    parts.append("## Artifacts")
    artifacts = list(record.get("artifacts") or [])
    logs = record.get("logs")
    files = [(a.get("name"), a.get("media"), _size(a.get("size")), a.get("sha256"))
             for a in artifacts]  # fmt: skip
    if logs:
        files.append((logs.get("name"), "log lines", _size(logs.get("size")), logs.get("sha256")))
    parts.append(table(("name", "media", "size (bytes)", "sha256"), files) if files else "none")

    parts.append("## Fingerprints")
    prints = prov.get("fingerprints") or {}
    packages = prints.get("packages") or {}
    rows = [("code", prints.get("code_sha256") or "-"), ("python", prints.get("python") or "-")]
    rows += [(f"package {name}", version) for name, version in sorted(packages.items())]
    parts.append(table(("what", "fingerprint"), rows))

    error = record.get("error")
    parts.append("## Error")
    if error:
        parts.append(f"{cell(error.get('type'))}:")
        parts.append(fenced(str(error.get("message", ""))))
        if error.get("details") is not None:
            parts.append(fenced(json.dumps(error["details"], indent=2, ensure_ascii=False),
                                "json"))  # fmt: skip
    else:
        parts.append("none")

    calls = record.get("uncontrolled") or []
    if calls:
        parts.append("## Uncontrolled calls")
        parts.append(table(("call", "where", "severity", "hint"),
                           [(c.get("call"), f"{c.get('file')}:{c.get('line')}",
                             c.get("severity"), c.get("hint")) for c in calls]))  # fmt: skip
    return "\n\n".join(parts) + "\n"
