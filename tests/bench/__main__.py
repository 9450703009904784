"""Run the benchmarks: `python -m tests.bench [--only NAME] [--requests N] ...`.

Prints a table per benchmark and writes `data/bench/<name>.json`. Exits 1 when something
functionally failed (an answer that was not 200, a reply that never came); never on timings.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import logging
import os
import platform
import subprocess
import sys
from collections.abc import Callable, Coroutine
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from tests.bench import charts, checkins, faults, modal, replicas, rss, summary
from tests.bench.measure import BenchFailure, Options, Result

ROOT = Path(__file__).resolve().parents[2]
BENCHMARKS: dict[str, Callable[[Options], Coroutine[Any, Any, Result]]] = {
    summary.NAME: summary.run,
    checkins.NAME: checkins.run,
    faults.NAME: faults.run,
    modal.NAME: modal.run,
    rss.NAME: rss.run,
    replicas.NAME: replicas.run,
    charts.NAME: charts.run,
}


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    defaults = Options()
    parser = argparse.ArgumentParser(prog="python -m tests.bench", description=__doc__)
    parser.add_argument(
        "--only",
        action="append",
        choices=sorted(BENCHMARKS),
        help="run only this benchmark (repeatable); default: all",
    )
    parser.add_argument(
        "--requests",
        type=_at_least(1),
        default=defaults.requests,
        metavar="N",
        help=f"measured requests per app and level (default {defaults.requests})",
    )
    parser.add_argument(
        "--warmup",
        type=_at_least(0),
        default=defaults.warmup,
        metavar="N",
        help=f"unmeasured requests per app before each level (default {defaults.warmup})",
    )
    parser.add_argument(
        "--concurrency",
        type=_levels,
        default=defaults.concurrency,
        metavar="1,10,50",
        help="requests in flight at once, one level per comma-separated number",
    )
    parser.add_argument(
        "--timeout",
        type=float,
        default=defaults.timeout,
        metavar="SECONDS",
        help="give up on a request whose answer or first call takes longer: a failure",
    )
    parser.add_argument(
        "--out",
        type=Path,
        default=ROOT / "data" / "bench",
        metavar="DIR",
        help="where <name>.json goes (default data/bench)",
    )
    return parser.parse_args(argv)


def _at_least(low: int) -> Callable[[str], int]:
    def number(text: str) -> int:
        value = int(text)
        if value < low:
            raise argparse.ArgumentTypeError(f"must be at least {low}")
        return value

    return number


def _levels(text: str) -> tuple[int, ...]:
    try:
        levels = tuple(int(part) for part in text.split(","))
    except ValueError:
        raise argparse.ArgumentTypeError(f"not a list of numbers: {text!r}") from None
    if not levels or min(levels) < 1:
        raise argparse.ArgumentTypeError("every level must be at least 1")
    return levels


def environment() -> dict[str, Any]:
    """Where and when the figures were taken, so later runs can be compared fairly."""
    try:
        commit = subprocess.run(
            ["git", "rev-parse", "--short", "HEAD"],
            cwd=ROOT,
            capture_output=True,
            text=True,
            check=True,
        ).stdout.strip()
    except (OSError, subprocess.CalledProcessError):
        commit = None
    return {
        "run_at": datetime.now(UTC).isoformat(timespec="seconds"),
        "commit": commit,
        "python": platform.python_version(),
        "platform": platform.platform(),
        "cpus": os.cpu_count(),
    }


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    logging.basicConfig(level=logging.WARNING, format="%(levelname)s %(name)s: %(message)s")
    options = Options(
        requests=args.requests,
        warmup=args.warmup,
        concurrency=args.concurrency,
        timeout=args.timeout,
    )
    args.out.mkdir(parents=True, exist_ok=True)
    for name in args.only or list(BENCHMARKS):
        try:
            result = asyncio.run(BENCHMARKS[name](options))
        except BenchFailure as failure:
            print(f"benchmark {name} FAILED: {failure}", file=sys.stderr)
            return 1
        print(result.table(), end="\n\n")
        path = args.out / f"{name}.json"
        path.write_text(json.dumps({**environment(), **result.to_json()}, indent=2) + "\n")
        print(f"written to {path}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
