"""One report model for every gate (contracts check, replay, certify) and the formats a CI reads.

Standard library only, so every layer can build a report; the rich text rendering is the CLI's.
A report is a list of items (one per runner, golden case or replayed run: a JUnit testcase), each
with its findings (one per rule hit or difference: a JUnit failure line, a GitHub annotation).
"""

from __future__ import annotations

import json
import os
from collections import Counter
from dataclasses import asdict, dataclass, field, replace
from enum import StrEnum
from pathlib import Path
from typing import Any
from xml.etree import ElementTree


class Outcome(StrEnum):
    passed = "passed"
    failed = "failed"  #: the check ran and found a problem (exit 1)
    error = "error"  #: the check could not run for this item (missing runner, bad file: exit 1)
    skipped = "skipped"


@dataclass(frozen=True)
class Finding:
    """One thing wrong (or worth knowing) about an item."""

    message: str
    rule: str | None = None  #: e.g. "input.required_added"
    #: "breaking", "compatible", "error", "warning" (reported, fails nothing), "notice"
    severity: str | None = None
    path: str | None = None  #: where in the document, e.g. "input.properties.target"
    file: str | None = None  #: source file the finding points at (GitHub annotations)
    line: int | None = None

    def render(self) -> str:
        """One line: "[severity] rule at path: message" (the parts it has)."""
        head = " ".join(
            part
            for part in (
                f"[{self.severity}]" if self.severity else "",
                self.rule or "",
                f"at {self.path}" if self.path else "",
            )
            if part
        )
        return f"{head}: {self.message}" if head else self.message


@dataclass(frozen=True)
class Item:
    """One checked thing: a runner's contract, a golden case, a replayed run."""

    suite: str  #: "contracts", "golden", "replay", ...
    name: str
    outcome: Outcome
    summary: str = ""
    findings: tuple[Finding, ...] = ()
    file: str | None = None
    line: int | None = None
    duration_s: float = 0.0


@dataclass
class Report:
    items: list[Item] = field(default_factory=list)

    def extend(self, items: list[Item]) -> None:
        self.items.extend(items)

    @property
    def ok(self) -> bool:
        return all(i.outcome in (Outcome.passed, Outcome.skipped) for i in self.items)

    @property
    def exit_code(self) -> int:
        return 0 if self.ok else 1

    def counts(self, suite: str | None = None) -> dict[str, int]:
        counted = Counter(i.outcome.value for i in self.items if suite in (None, i.suite))
        return {o.value: counted.get(o.value, 0) for o in Outcome}

    def suites(self) -> list[str]:
        return list(dict.fromkeys(i.suite for i in self.items))

    def files_from(self, root: Path, here: Path) -> Report:
        """A copy whose files, relative to `root` (the project checked), are relative to `here`
        (where the command ran: a CI's checkout), so `certify examples` annotates
        `examples/golden/...` and GitHub finds the file. Absolute files under `here` become
        relative to it; files elsewhere stay absolute."""

        def moved(file: str | None) -> str | None:
            if not file:
                return file
            path = Path(file) if Path(file).is_absolute() else root / file
            path = Path(os.path.abspath(path))
            return path.relative_to(here).as_posix() if path.is_relative_to(here) else str(path)

        def item(i: Item) -> Item:
            findings = tuple(replace(f, file=moved(f.file)) for f in i.findings)
            return replace(i, file=moved(i.file), findings=findings)

        return Report([item(i) for i in self.items])

    def to_json(self) -> str:
        body = {
            "ok": self.ok,
            "counts": {s: self.counts(s) for s in self.suites()},
            "items": [_item_json(i) for i in self.items],
        }
        return json.dumps(body, indent=2, sort_keys=True)

    def to_junit(self) -> str:
        root = ElementTree.Element("testsuites", name="jobforge")
        for suite in self.suites():
            items = [i for i in self.items if i.suite == suite]
            counts = self.counts(suite)
            element = ElementTree.SubElement(
                root,
                "testsuite",
                name=suite,
                tests=str(len(items)),
                failures=str(counts["failed"]),
                errors=str(counts["error"]),
                skipped=str(counts["skipped"]),
                time=f"{sum(i.duration_s for i in items):.3f}",
            )
            for item in items:
                case = ElementTree.SubElement(
                    element,
                    "testcase",
                    classname=f"jobforge.{suite}",
                    name=item.name,
                    time=f"{item.duration_s:.3f}",
                )
                if item.file:
                    case.set("file", item.file)
                    if item.line:
                        case.set("line", str(item.line))
                text = "\n".join(f.render() for f in item.findings)
                if item.outcome is Outcome.failed:
                    ElementTree.SubElement(case, "failure", message=item.summary).text = text
                elif item.outcome is Outcome.error:
                    ElementTree.SubElement(case, "error", message=item.summary).text = text
                elif item.outcome is Outcome.skipped:
                    ElementTree.SubElement(case, "skipped", message=item.summary)
                elif text:
                    ElementTree.SubElement(case, "system-out").text = text
        ElementTree.indent(root)
        return '<?xml version="1.0" encoding="utf-8"?>\n' + ElementTree.tostring(
            root, encoding="unicode"
        )

    def to_github(self) -> str:
        """GitHub Actions workflow commands: one annotation per finding of a failing item, and
        one per warning or notice of a passing one (they fail nothing, but someone should know:
        a machine-dependent read, a value not compared, a schema generator change)."""
        lines = []
        for item in self.items:
            findings = item.findings
            if item.outcome in (Outcome.passed, Outcome.skipped):
                findings = tuple(f for f in findings if f.severity in ("warning", "notice"))
                if not findings:
                    continue
            elif all(f.severity in ("compatible", "notice", "warning") for f in findings):
                # a failed item needs an error annotation even when each finding is mild
                # (drift is always reviewed): the item's own summary is the error
                summary = Finding(message=item.summary or item.outcome.value, severity="error")
                findings = (summary, *findings)
            for finding in findings:
                level = {"compatible": "notice", "notice": "notice", "warning": "warning"}.get(
                    finding.severity or "", "error"
                )
                where = finding.file or item.file
                line = finding.line or item.line
                props = []
                if where:
                    props.append(f"file={_escape_property(where)}")
                    if line:
                        props.append(f"line={line}")
                title = f"{item.suite} {item.name}" + (f" [{finding.rule}]" if finding.rule else "")
                props.append(f"title={_escape_property(title)}")
                lines.append(f"::{level} {','.join(props)}::{_escape_data(finding.render())}")
        counts = ", ".join(
            f"{suite}: " + ", ".join(f"{n} {o}" for o, n in self.counts(suite).items() if n)
            for suite in self.suites()
        )
        lines.append(f"jobforge: {'ok' if self.ok else 'FAILED'} ({counts or 'nothing checked'})")
        return "\n".join(lines)


def _item_json(item: Item) -> dict[str, Any]:
    body = asdict(item)
    body["outcome"] = item.outcome.value
    body["findings"] = [
        {k: v for k, v in asdict(f).items() if v is not None} for f in item.findings
    ]
    return body


def _escape_data(text: str) -> str:
    return text.replace("%", "%25").replace("\r", "%0D").replace("\n", "%0A")


def _escape_property(text: str) -> str:
    return _escape_data(text).replace(":", "%3A").replace(",", "%2C")
