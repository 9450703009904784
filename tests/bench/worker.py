"""A replica for the kill -9 fault (tests/bench/faults.py): the `checkins` job once a minute,
on the scaled time it is given, until it is killed.

`python -m tests.bench.worker --database URL --slack API_URL --rate R --scale K
--origin ISO --wall-origin EPOCH`
"""

from __future__ import annotations

import argparse
import asyncio
import math
from datetime import datetime

from tests.bench.faults import ScaledTime, replica, run_jobs


async def work(args: argparse.Namespace) -> None:
    time_ = ScaledTime(args.scale, datetime.fromisoformat(args.origin), args.wall_origin)
    async with replica(args.database, args.slack, time_, args.rate) as services:
        print(f"started {time_.seconds()}", flush=True)  # the bot's time the first run starts
        await run_jobs(services, time_, rate=args.rate, done=lambda: False, deadline=math.inf)


def main() -> None:
    parser = argparse.ArgumentParser(prog="python -m tests.bench.worker", description=__doc__)
    parser.add_argument("--database", required=True)
    parser.add_argument("--slack", required=True, help="the fake Slack's Web API URL")
    parser.add_argument("--rate", type=int, required=True)
    parser.add_argument("--scale", type=float, required=True)
    parser.add_argument("--origin", required=True)
    parser.add_argument("--wall-origin", type=float, required=True)
    asyncio.run(work(parser.parse_args()))


if __name__ == "__main__":
    main()
