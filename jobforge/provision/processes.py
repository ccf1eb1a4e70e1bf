"""Process liveness that tells a zombie from a live process.

A postmaster whose parent (an xdist worker) has exited is reparented to pid 1; in a container
whose pid 1 does not reap, it lingers as a zombie, which `kill(pid, 0)` still reports as alive.
"""

from __future__ import annotations

import os
import signal
import time
from pathlib import Path


def alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        pass
    try:
        if os.waitpid(pid, os.WNOHANG)[0] == pid:  # our own child: reap it
            return False
    except ChildProcessError:
        pass
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return True  # no procfs (macOS): trust kill()
    return stat.rsplit(")", 1)[1].split()[0] not in ("Z", "X")


def signal_and_wait(pid: int, sig: signal.Signals, timeout_s: float) -> bool:
    """Send `sig`; True once `pid` is gone within `timeout_s`."""
    try:
        os.kill(pid, sig)
    except ProcessLookupError:
        return True
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if not alive(pid):
            return True
        time.sleep(0.01)
    return not alive(pid)
