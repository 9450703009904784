"""`python -m tests.bench.peak ARGS…`: `northstar ARGS…`, then this process's peak resident set
(VmHWM) and its resident set at the end (VmRSS), from /proc/self/status, as the last line of
stderr, `memory_kb=PEAK END`: what a command that exits used, which its /proc entry no
longer holds once it has."""

from __future__ import annotations

import sys
from pathlib import Path

from bot.cli.main import main

PREFIX = "memory_kb="


def memory_kb() -> tuple[int, int]:
    found = {}
    for line in Path("/proc/self/status").read_text().splitlines():
        name, _, value = line.partition(":")
        if name in ("VmHWM", "VmRSS"):
            found[name] = int(value.split()[0])
    return found["VmHWM"], found["VmRSS"]


def read_memory(stderr: str) -> tuple[float, float] | None:
    """(peak, end) in MiB from a run's stderr, or None when it has no such line."""
    lines = [line for line in stderr.splitlines() if line.startswith(PREFIX)]
    if not lines:
        return None
    peak, end = lines[-1].removeprefix(PREFIX).split()
    return int(peak) / 1024, int(end) / 1024


if __name__ == "__main__":
    code = main(sys.argv[1:])
    print(PREFIX + " ".join(str(kb) for kb in memory_kb()), file=sys.stderr)
    raise SystemExit(code)
