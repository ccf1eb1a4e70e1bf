"""Stops a throwaway server when the process that owns it dies, even by SIGKILL.

Run as a script (`python -I -S watchdog.py OWNER_PID POSTMASTER_PID RUN_DIR`), standard library
only so it starts in a few milliseconds. It waits for OWNER_PID to exit (a pidfd where the kernel
has them, polling elsewhere), then shuts the postmaster down immediately and deletes RUN_DIR.
The owner stops the server itself on a normal exit and then terminates us; we are the safety net.
"""

from __future__ import annotations

import os
import select
import shutil
import signal
import sys
import time


def _alive(pid: int) -> bool:
    """Like jobforge.provision.processes.alive (this script imports nothing of jobforge)."""
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    try:
        with open(f"/proc/{pid}/stat") as stat:
            return stat.read().rsplit(")", 1)[1].split()[0] not in ("Z", "X")
    except OSError:
        return True


def wait_for_exit(pid: int, poll_s: float = 0.2) -> None:
    try:
        fd = os.pidfd_open(pid)
    except (AttributeError, OSError):
        while _alive(pid):
            time.sleep(poll_s)
        return
    try:
        select.select([fd], [], [])
    finally:
        os.close(fd)


def stop_postmaster(pid: int, grace_s: float = 5.0) -> None:
    """Immediate shutdown (SIGQUIT), then SIGKILL if it lingers."""
    for sig, wait in ((signal.SIGQUIT, grace_s), (signal.SIGKILL, 1.0)):
        try:
            os.kill(pid, sig)
        except ProcessLookupError:
            return
        deadline = time.monotonic() + wait
        while time.monotonic() < deadline:
            if not _alive(pid):
                return
            time.sleep(0.01)


def main(argv: list[str]) -> int:
    owner, postmaster, run_dir = int(argv[0]), int(argv[1]), argv[2]
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(0))
    wait_for_exit(owner)
    if not os.path.isdir(run_dir):
        return 0  # the owner stopped the server and cleaned up; the pid may be reused by now
    stop_postmaster(postmaster)
    shutil.rmtree(run_dir, ignore_errors=True)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
