"""Runs of golden cases in a fresh interpreter with another PYTHONHASHSEED: what set and dict
ordering, import-time state and module-level counters do differently there shows up as a
difference from the in-process runs.

One child process serves every case of a pytest process (JSON lines over stdin and stdout), so
the interpreter start-up is paid once, not per case. `python -m jobforge.golden.fresh` is the
child's entry point.
"""

from __future__ import annotations

import json
import os
import random
import subprocess
import sys
from pathlib import Path
from typing import Any

from jobforge import errors


class FreshInterpreter:
    """The parent's handle on the child process."""

    def __init__(self, project_root: Path, modules: list[str], *, strict: bool = True) -> None:
        self.project_root = project_root
        self.modules = modules
        self.strict = strict
        self.hash_seed = _other_seed(os.environ.get("PYTHONHASHSEED"))
        self._proc: subprocess.Popen[str] | None = None

    def run(self, dsn: str, runner_id: str, case_path: Path) -> dict[str, Any]:
        proc = self._child()
        assert proc.stdin is not None
        assert proc.stdout is not None
        request = {
            "dsn": dsn, "runner_id": runner_id, "case": str(case_path), "strict": self.strict,
        }  # fmt: skip
        proc.stdin.write(json.dumps(request) + "\n")
        proc.stdin.flush()
        line = proc.stdout.readline()
        if not line:
            self.close()
            raise errors.JobforgeError(
                f"the fresh-interpreter run of {case_path} died (exit {proc.poll()})"
            )
        answer = json.loads(line)
        if "error" in answer:
            raise errors.JobforgeError(f"fresh-interpreter run of {case_path}: {answer['error']}")
        record: dict[str, Any] = answer["record"]
        return record

    def _child(self) -> subprocess.Popen[str]:
        if self._proc is None or self._proc.poll() is not None:
            env = {**os.environ, "PYTHONHASHSEED": str(self.hash_seed)}
            self._proc = subprocess.Popen(
                [sys.executable, "-m", "jobforge.golden.fresh", str(self.project_root),
                 *self.modules],
                stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True, env=env,
                cwd=self.project_root,
            )  # fmt: skip
        return self._proc

    def close(self) -> None:
        if self._proc is not None:
            if self._proc.stdin:
                self._proc.stdin.close()
            try:
                self._proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self._proc.kill()
                self._proc.wait()
            self._proc = None


def _other_seed(current: str | None) -> int:
    """A hash seed the parent does not have."""
    if current and current.isdigit():
        return (int(current) + 1) % 4294967296 or 1
    return random.SystemRandom().randint(1, 4294967295)


def _serve(project_root: Path, modules: list[str]) -> int:
    from jobforge.contracts import discover, find_config
    from jobforge.contracts.discovery import import_modules
    from jobforge.golden.case import load_case
    from jobforge.golden.execute import run_case

    import_modules(modules, project_root)
    runners = discover(find_config(project_root))
    for line in sys.stdin:
        request = json.loads(line)
        try:
            definition = runners[request["runner_id"]]
            case = load_case(Path(request["case"]))
            record = run_case(request["dsn"], definition, case, strict=request["strict"])
            answer: dict[str, Any] = {"record": record}
        except Exception as exc:
            answer = {"error": f"{type(exc).__name__}: {exc}"}
        sys.stdout.write(json.dumps(answer) + "\n")
        sys.stdout.flush()
    return 0


if __name__ == "__main__":
    sys.exit(_serve(Path(sys.argv[1]), sys.argv[2:]))
