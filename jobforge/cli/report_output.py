"""Printing a `jobforge.report.Report`: a rich summary for people, or what a CI reads."""

from __future__ import annotations

from enum import StrEnum
from pathlib import Path

from rich.markup import escape
from rich.table import Table

from jobforge import errors
from jobforge.cli.output import console
from jobforge.report import Outcome, Report


class ReportFormat(StrEnum):
    text = "text"
    json = "json"
    junit = "junit"
    github = "github"


_STYLE = {"passed": "green", "failed": "red", "error": "red", "skipped": "yellow"}


def emit(report: Report, fmt: ReportFormat, output: Path | None = None, *,
         suites: tuple[str, ...] = ()) -> None:  # fmt: skip
    """Print the report (or write it to `output`); text always goes to the terminal."""
    if fmt is ReportFormat.text:
        render_text(report, suites)
        return
    body = machine_text(report, fmt)
    if output is None:
        console.print(body, markup=False, highlight=False, soft_wrap=True)
        return
    write_report(output, body)
    render_text(report, suites)


def machine_text(report: Report, fmt: ReportFormat) -> str:
    """The report in a format a CI reads (json, junit or github)."""
    return {
        ReportFormat.json: report.to_json,
        ReportFormat.junit: report.to_junit,
        ReportFormat.github: report.to_github,
    }[fmt]()


def write_report(output: Path, body: str) -> None:
    """`--output FILE`: the report written there (folders created), a clear error otherwise."""
    try:
        output.parent.mkdir(parents=True, exist_ok=True)
        output.write_text(body + "\n", encoding="utf-8")
    except OSError as exc:
        raise errors.ConfigurationError(f"cannot write {output}: {exc.strerror}") from None


def render_text(report: Report, suites: tuple[str, ...] = ()) -> None:
    for item in report.items:
        findings = item.findings
        if item.outcome in (Outcome.passed, Outcome.skipped):
            # a passing item's warnings and notices fail nothing, but someone should read them
            findings = tuple(f for f in findings if f.severity in ("warning", "notice"))
            if not findings:
                continue
            level = "WARNING" if any(f.severity == "warning" for f in findings) else "NOTE"
            head = f"[yellow]{level}[/] {escape(item.suite)} {escape(item.name)}"
        else:
            style = _STYLE[item.outcome.value]
            head = (f"[{style}]{item.outcome.value.upper()}[/] {escape(item.suite)} "
                    f"{escape(item.name)}")  # fmt: skip
        if item.summary:
            head += f": {escape(item.summary)}"
        console.print(head, markup=True)
        for finding in findings:
            where = f" ({finding.file}:{finding.line})" if finding.file and finding.line else ""
            label = f"[{finding.rule}] " if finding.rule else ""
            # the path tells apart findings whose words are the same (one per changed field)
            unsaid = finding.path and finding.path not in finding.message
            at = f"at {finding.path}: " if unsaid else ""
            console.print(f"    {label}{at}{finding.message}{where}", markup=False)
    table = Table(title=None, show_edge=False, header_style="bold")
    table.add_column("check")
    for outcome in Outcome:
        table.add_column(outcome.value, justify="right")
    for suite in suites or tuple(report.suites()):
        counts = report.counts(suite)
        table.add_row(suite, *(_cell(o.value, counts[o.value]) for o in Outcome))
    console.print(table)
    verdict = "[bold green]ok[/]" if report.ok else "[bold red]FAILED[/]"
    console.print(verdict, markup=True)


def _cell(outcome: str, count: int) -> str:
    return f"[{_STYLE[outcome]}]{count}[/]" if count else "[dim]0[/]"
