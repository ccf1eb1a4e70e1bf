"""Runs of golden cases in a fresh interpreter with another PYTHONHASHSEED: what set and dict
ordering, import-time state and module-level counters do differently there shows up as a
difference from the in-process runs.

One child process serves every case of a pytest process (JSON lines over stdin and stdout), so
the interpreter start-up is paid once, not per case. It runs them on a lane of its own
(`jobforge.golden.lane`) over a clone the parent takes for it and drops when the child ends; a
child that reports an error is ended, so the next case starts a new one on a new clone.
`python -m jobforge.golden.fresh` is the child's entry point; its first input line names the
clone (on stdin, not argv, where a password would show in the process list).
"""

from __future__ import annotations

import json
import os
import random
import subprocess
import sys
from contextlib import ExitStack, nullcontext, suppress
from pathlib import Path
from typing import Any

from jobforge import errors
from jobforge.golden.lane import Databases
from jobforge.runtime.http import HttpPolicy

#: Where a fresh interpreter looks for runners, said when one is not there.
FRESH_WHERE = (
    " in a fresh interpreter, which imports only the [tool.jobforge] runners modules and entry "
    "points"
)


class FreshInterpreter:
    """The parent's handle on the child process."""

    def __init__(
        self,
        project_root: Path,
        modules: list[str],
        databases: Databases,
        *,
        strict: bool = True,
        hash_seed: int | None = None,
        http_policy: HttpPolicy | None = None,
    ) -> None:
        """`http_policy`: its allowed hosts and hint go to the child (the rest of a policy is
        about live requests, which a golden run never makes)."""
        self.project_root = project_root
        self.modules = modules
        self.databases = databases
        self.strict = strict
        self.http_policy = http_policy
        self.hash_seed = (
            hash_seed if hash_seed is not None else _other_seed(os.environ.get("PYTHONHASHSEED"))
        )
        self._proc: subprocess.Popen[str] | None = None
        self._clone = ExitStack()

    def run(self, runner_id: str, case_path: Path, clock_shift_s: float = 0.0) -> dict[str, Any]:
        proc = self._child()
        request = {"runner_id": runner_id, "case": str(case_path), "strict": self.strict,
                   "clock_shift_s": clock_shift_s}  # fmt: skip
        if self.http_policy is not None:
            request["allow_hosts"] = sorted(self.http_policy.allow_hosts)
            request["allow_hint"] = self.http_policy.allow_hint
        line = self._ask(proc, request)
        if not line:
            try:  # its stdout closed: it is exiting (poll() could still say None)
                code: int | None = proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                code = None
            self.close()
            raise errors.JobforgeError(
                f"the fresh-interpreter run of {case_path} died (exit {code})"
            )
        answer = json.loads(line)
        if "error" in answer:
            self.close()  # its lane's clone may be left in any state: the next case gets another
            raise errors.JobforgeError(f"fresh-interpreter run of {case_path}: {answer['error']}")
        record: dict[str, Any] = answer["record"]
        return record

    def same_seed_run(self, runner_id: str, case_path: Path,
                      clock_shift_s: float = 0.0) -> dict[str, Any]:  # fmt: skip
        """The case once more in another new interpreter with this one's hash seed. What the
        hash seed decides (set and dict order of str) comes out the same; what differs from
        process to process (pids, addresses, clocks, import-time randomness) does not."""
        other = FreshInterpreter(self.project_root, self.modules, self.databases,
                                 strict=self.strict, hash_seed=self.hash_seed,
                                 http_policy=self.http_policy)  # fmt: skip
        try:
            return other.run(runner_id, case_path, clock_shift_s)
        finally:
            other.close()

    @staticmethod
    def _ask(proc: subprocess.Popen[str], request: dict[str, Any]) -> str:
        assert proc.stdin is not None
        assert proc.stdout is not None
        try:
            proc.stdin.write(json.dumps(request) + "\n")
            proc.stdin.flush()
        except BrokenPipeError:
            return ""
        return proc.stdout.readline()

    def _child(self) -> subprocess.Popen[str]:
        if self._proc is None or self._proc.poll() is not None:
            self.close()
            dsn = self._clone.enter_context(self.databases())
            env = {**os.environ, "PYTHONHASHSEED": str(self.hash_seed)}
            self._proc = subprocess.Popen(
                [sys.executable, "-m", "jobforge.golden.fresh", str(self.project_root),
                 *self.modules],
                stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True, env=env,
                cwd=self.project_root,
            )  # fmt: skip
            assert self._proc.stdin is not None
            try:
                self._proc.stdin.write(json.dumps({"dsn": dsn}) + "\n")
                self._proc.stdin.flush()
            except BrokenPipeError:
                pass  # it died at start-up: the first request reports it
        return self._proc

    def close(self) -> None:
        """End the child, then drop its clone."""
        if self._proc is not None:
            if self._proc.stdin:
                with suppress(BrokenPipeError):
                    self._proc.stdin.close()
            try:
                self._proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self._proc.kill()
                self._proc.wait()
            if self._proc.stdout:
                self._proc.stdout.close()
            self._proc = None
        self._clone.close()


def _other_seed(current: str | None) -> int:
    """A hash seed the parent does not have."""
    if current and current.isdigit():
        return (int(current) + 1) % 4294967296 or 1
    return random.SystemRandom().randint(1, 4294967295)


def _serve(project_root: Path, modules: list[str]) -> int:
    from jobforge.config import find_config
    from jobforge.contracts import discover, find_runner
    from jobforge.contracts.discovery import import_modules
    from jobforge.golden.case import load_case
    from jobforge.golden.execute import RunOptions
    from jobforge.golden.lane import Lane

    import_modules(modules, project_root)
    runners = discover(find_config(project_root))
    hello = sys.stdin.readline()
    if not hello:
        return 0
    dsn = json.loads(hello)["dsn"]
    lane = Lane(lambda: nullcontext(dsn), recycle_after=None)
    try:
        for line in sys.stdin:
            request = json.loads(line)
            try:
                definition = find_runner(request["runner_id"], runners, where=FRESH_WHERE)
                case = load_case(Path(request["case"]))
                policy = (
                    HttpPolicy(allow_hosts=frozenset(request["allow_hosts"]),
                               allow_hint=request["allow_hint"])
                    if "allow_hosts" in request
                    else None
                )  # fmt: skip
                options = RunOptions(strict=request["strict"], http_policy=policy,
                                     clock_shift_s=request.get("clock_shift_s", 0.0))  # fmt: skip
                answer: dict[str, Any] = {"record": lane.run(definition, case, options)}
            except Exception as exc:
                answer = {"error": f"{type(exc).__name__}: {exc}"}
            sys.stdout.write(json.dumps(answer) + "\n")
            sys.stdout.flush()
    finally:
        lane.close()
    return 0


if __name__ == "__main__":
    sys.exit(_serve(Path(sys.argv[1]), sys.argv[2:]))
