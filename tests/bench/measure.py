"""Shared machinery: timed fake Slack, closed-loop load, percentiles, the comparison table."""

from __future__ import annotations

import asyncio
import gc
import math
import os
import resource
import sys
from collections import Counter
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, Literal, Protocol
from urllib.parse import urlencode

from tests.fakes import FakeSlack, SlackDriver
from tests.fakes.driver import USER_AGENT, VERIFICATION_TOKEN
from tests.fakes.slack_api import JSON, _Reply

CHANNEL = "C0GENERAL1"
SETTLE_SECONDS = 0.05
# A segment ends when the app has gone quiet: no Web API call for this long. Work an app
# does after its first call (filling a modal) then stays in its own segment instead of
# slowing down the next target's.
QUIET_SECONDS = 0.25


class BenchFailure(Exception):
    """Something functionally failed, so the figures would mean nothing."""


@dataclass(frozen=True)
class Options:
    """How hard and how long to push: requests per app and level, after a warm-up."""

    requests: int = 200
    warmup: int = 20
    concurrency: tuple[int, ...] = (1, 10, 50)
    timeout: float = 30.0


class Result(Protocol):
    """What a benchmark hands back to `__main__`."""

    @property
    def name(self) -> str: ...

    def table(self) -> str: ...

    def to_json(self) -> dict[str, Any]: ...


# --- the fake, timed --------------------------------------------------------------------


@dataclass(frozen=True)
class Arrival:
    """The first Web API call (or response_url post) that carried a request's id."""

    method: str
    at: float
    ok: bool
    body: JSON


class TimedFake(FakeSlack):
    """The fake Slack, also noting when each response_url and trigger_id is first used.

    A `Call` does not say which response_url it was posted to, so the two places that
    see the id are hooked. The time is taken on the fake's own clock as the request
    reaches the fake, before it validates the payload.
    """

    def __init__(self, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self._expected: dict[str, asyncio.Future[Arrival]] = {}

    def expect(self, key: str) -> asyncio.Future[Arrival]:
        """A future resolved by the first call carrying `key` (a response id or trigger_id)."""
        future: asyncio.Future[Arrival] = asyncio.get_running_loop().create_future()
        self._expected[key] = future
        return future

    def _arrive(self, key: str, arrival: Arrival) -> None:
        future = self._expected.pop(key, None)
        if future is not None and not future.done():
            future.set_result(arrival)

    def _respond(self, response_id: str, body: Any) -> tuple[int, str]:
        at = self.clock()
        status, text = super()._respond(response_id, body)
        payload = body if isinstance(body, dict) else {"raw": body}
        self._arrive(response_id, Arrival("response_url", at, status == 200, payload))
        return status, text

    def _dispatch(self, method: str, args: JSON, token: str | None) -> _Reply:
        at = self.clock()
        reply = super()._dispatch(method, args, token)
        trigger_id = args.get("trigger_id")
        if isinstance(trigger_id, str):
            ok = reply.status == 200 and reply.body.get("ok") is True
            self._arrive(trigger_id, Arrival(method, at, ok, reply.body))
        return reply

    def response_id(self, response_url: str) -> str:
        return response_url.removeprefix(f"{self.base_url}/response/")


# --- one app under load -------------------------------------------------------------------


@dataclass(frozen=True)
class Target:
    """An app under test: how to reach it, what to send, which call should follow."""

    name: str
    driver: SlackDriver
    command: str
    text: str
    user: str
    first_call: Literal["response_url", "views.open"]
    check: Callable[[Arrival], str | None] = lambda _arrival: None
    # Count a views.open refused with expired_trigger_id (the person saw nothing) as a
    # sample instead of failing the run: for levels where that can happen.
    count_expired: bool = False
    # The app's process, when it runs in one of its own: its CPU time per request is measured
    # (from sending the first request to the end of the app's last Web API call).
    pid: int | None = None


@dataclass(frozen=True)
class Sample:
    """One request: when it was sent, answered, and when its first Web API call came."""

    sent: float
    answered: float
    first_call: float
    expired: bool = False


async def send_command(fake: TimedFake, target: Target, *, give_up_after: float) -> Sample:
    """One signed slash command, timed from sending to the HTTP answer and the first call."""
    user = fake.users[target.user]
    response_url = fake.new_response_url(channel=CHANNEL, user=target.user)
    trigger_id = fake.issue_trigger_id(user=target.user)
    key = fake.response_id(response_url) if target.first_call == "response_url" else trigger_id
    arrived = fake.expect(key)
    body = urlencode(
        {
            "token": VERIFICATION_TOKEN,
            "team_id": fake.team_id,
            "team_domain": fake.team_domain,
            "channel_id": CHANNEL,
            "channel_name": "general",
            "user_id": target.user,
            "user_name": user["name"],
            "command": target.command,
            "text": target.text,
            "api_app_id": fake.app_id,
            "is_enterprise_install": "false",
            "response_url": response_url,
            "trigger_id": trigger_id,
        }
    )
    headers = {
        "Content-Type": "application/x-www-form-urlencoded",
        "User-Agent": USER_AGENT,
        **target.driver.sign(body),
    }
    asked = f"{target.name}: {target.command} {target.text}".rstrip()
    sent = fake.clock()
    try:
        answer = await asyncio.wait_for(target.driver.post_raw(body, headers), give_up_after)
    except TimeoutError:
        raise BenchFailure(f"{asked}: no HTTP answer within {give_up_after:g}s") from None
    answered = fake.clock()
    if answer.status != 200:
        raise BenchFailure(f"{asked}: HTTP {answer.status} {answer.text[:200]!r}")
    try:
        arrival = await asyncio.wait_for(arrived, give_up_after)
    except TimeoutError:
        raise BenchFailure(
            f"{asked}: answered, but no {target.first_call} within {give_up_after:g}s"
        ) from None
    expired = arrival.body.get("error") == "expired_trigger_id"
    if target.count_expired and arrival.method == target.first_call and expired:
        return Sample(sent, answered, arrival.at, expired=True)
    if arrival.method != target.first_call or not arrival.ok:
        raise BenchFailure(
            f"{asked}: expected a successful {target.first_call}, got {arrival.method} "
            f"ok={arrival.ok} {str(arrival.body)[:200]}"
        )
    problem = target.check(arrival)
    if problem is not None:
        raise BenchFailure(f"{asked}: {problem}")
    return Sample(sent, answered, arrival.at)


@dataclass
class Run:
    """Samples, busy seconds and Web API calls gathered for one app at one level."""

    samples: list[Sample] = field(default_factory=list)
    seconds: float = 0.0
    calls: Counter[str] = field(default_factory=Counter)
    cpu_seconds: float | None = None  # of the target's process, when it has one


async def closed_loop(
    fake: TimedFake, target: Target, *, requests: int, concurrency: int, give_up_after: float
) -> Run:
    """`requests` commands from `concurrency` workers, each waiting for its first call.

    A request stays in flight until both its HTTP answer and its first Web API call
    have come, so exactly `concurrency` requests are being worked on at any time.
    """
    run = Run()
    if requests <= 0:
        return run
    tickets = iter(range(requests))

    async def worker() -> None:
        for _ in tickets:
            run.samples.append(await send_command(fake, target, give_up_after=give_up_after))

    gc.collect()
    first_call = len(fake.calls)
    cpu_before = process_cpu_seconds(target.pid) if target.pid is not None else None
    started = fake.clock()
    try:
        async with asyncio.TaskGroup() as group:
            for _ in range(min(concurrency, requests)):
                group.create_task(worker())
    except* BenchFailure as failures:
        raise failures.exceptions[0] from None
    run.seconds = fake.clock() - started
    await asyncio.sleep(SETTLE_SECONDS)
    await quiet(fake, give_up_after=give_up_after)
    if target.pid is not None and cpu_before is not None:
        run.cpu_seconds = process_cpu_seconds(target.pid) - cpu_before
    run.calls.update(call.method for call in fake.calls[first_call:])
    return run


def process_cpu_seconds(pid: int) -> float:
    """User and system CPU time a process has used so far, all its threads (/proc)."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")  # utime + stime


async def quiet(fake: FakeSlack, *, give_up_after: float) -> bool:
    """Wait until no Web API call has come for `QUIET_SECONDS` (at most `give_up_after`);
    whether it did."""
    deadline = fake.clock() + give_up_after
    seen = -1
    while len(fake.calls) != seen and fake.clock() < deadline:
        seen = len(fake.calls)
        await asyncio.sleep(QUIET_SECONDS)
    return len(fake.calls) == seen


async def compare(
    fake: TimedFake, targets: Sequence[Target], *, concurrency: int, options: Options
) -> dict[str, Run]:
    """Warm every target up, then run them in alternating segments (AB BA AB ...)."""
    for target in targets:
        await closed_loop(
            fake,
            target,
            requests=options.warmup,
            concurrency=concurrency,
            give_up_after=options.timeout,
        )
    runs = {target.name: Run() for target in targets}
    segment = max(2 * concurrency, math.ceil(options.requests / 4))
    starts = range(0, options.requests, segment)
    sizes = [min(segment, options.requests - start) for start in starts]
    for index, size in enumerate(sizes):
        order = targets if index % 2 == 0 else list(reversed(targets))
        for target in order:
            part = await closed_loop(
                fake,
                target,
                requests=size,
                concurrency=concurrency,
                give_up_after=options.timeout,
            )
            whole = runs[target.name]
            whole.samples += part.samples
            whole.seconds += part.seconds
            whole.calls += part.calls
            if part.cpu_seconds is not None:
                whole.cpu_seconds = (whole.cpu_seconds or 0.0) + part.cpu_seconds
    return runs


# --- figures ------------------------------------------------------------------------------


def percentile(values: Sequence[float], share: float) -> float:
    """The `share` (0..1) quantile, interpolating linearly between the nearest ranks."""
    if not values:
        raise ValueError("no values")
    ordered = sorted(values)
    position = share * (len(ordered) - 1)
    low = math.floor(position)
    high = min(low + 1, len(ordered) - 1)
    return ordered[low] + (ordered[high] - ordered[low]) * (position - low)


@dataclass(frozen=True)
class Figures:
    """One app at one concurrency level, in milliseconds and requests per second."""

    requests: int
    answer_p50_ms: float
    answer_p99_ms: float
    first_call_p50_ms: float
    first_call_p99_ms: float
    requests_per_second: float
    api_calls: dict[str, int]
    expired: int = 0
    # The app process's CPU time (all threads, user and system) per request, the work after
    # its first call included: what a closed loop at many in flight comes down to.
    cpu_ms_per_request: float | None = None

    @classmethod
    def of(cls, run: Run) -> Figures:
        answers = [1000 * (s.answered - s.sent) for s in run.samples]
        firsts = [1000 * (s.first_call - s.sent) for s in run.samples]
        return cls(
            requests=len(run.samples),
            answer_p50_ms=round(percentile(answers, 0.50), 3),
            answer_p99_ms=round(percentile(answers, 0.99), 3),
            first_call_p50_ms=round(percentile(firsts, 0.50), 3),
            first_call_p99_ms=round(percentile(firsts, 0.99), 3),
            requests_per_second=round(len(run.samples) / run.seconds, 2) if run.seconds else 0.0,
            api_calls=dict(sorted(run.calls.items())),
            expired=sum(1 for s in run.samples if s.expired),
            cpu_ms_per_request=(
                round(1000 * run.cpu_seconds / len(run.samples), 3)
                if run.cpu_seconds is not None and run.samples
                else None
            ),
        )

    @property
    def calls_per_request(self) -> float:
        return sum(self.api_calls.values()) / self.requests if self.requests else 0.0


RATIO_FIGURES = (
    "answer_p50_ms",
    "answer_p99_ms",
    "first_call_p50_ms",
    "first_call_p99_ms",
    "requests_per_second",
)


def ratio(ours: float, theirs: float) -> float | None:
    return round(ours / theirs, 3) if theirs else None


@dataclass(frozen=True)
class Level:
    """Our app and the baseline at one concurrency level."""

    concurrency: int
    ours: Figures
    baseline: Figures

    @property
    def ratios(self) -> dict[str, float | None]:
        """Ours divided by the baseline, figure by figure (for latency, higher is slower)."""
        return {
            name: ratio(getattr(self.ours, name), getattr(self.baseline, name))
            for name in RATIO_FIGURES
        }

    def to_json(self) -> dict[str, Any]:
        return {
            "concurrency": self.concurrency,
            "ours": asdict(self.ours),
            "baseline": asdict(self.baseline),
            "ratio": self.ratios,
        }


LATENCY_ROWS = (("HTTP answer (ms)", "answer"), ("first Web API call (ms)", "first_call"))


def comparison_table(levels: Sequence[Level], *, ours: str, baseline: str) -> str:
    """Per level: p50/p99 of both apps and their ratio, then throughput and call counts."""
    head = f"{'':>5}  {'':<24}{ours:>17}  {baseline:>17}  {'ratio':>15}"
    sub = f"{'conc':>5}  {'figure':<24}" + f"{'p50':>8} {'p99':>8}  " * 2 + f"{'p50':>7} {'p99':>7}"
    lines = [head, sub, "-" * len(sub)]
    for level in levels:
        ratios = level.ratios
        for index, (label, figure) in enumerate(LATENCY_ROWS):
            conc = str(level.concurrency) if index == 0 else ""
            cells = [
                getattr(level.ours, f"{figure}_p50_ms"),
                getattr(level.ours, f"{figure}_p99_ms"),
                getattr(level.baseline, f"{figure}_p50_ms"),
                getattr(level.baseline, f"{figure}_p99_ms"),
            ]
            lines.append(
                f"{conc:>5}  {label:<24}"
                f"{cells[0]:>8.2f} {cells[1]:>8.2f}  {cells[2]:>8.2f} {cells[3]:>8.2f}  "
                f"{_times(ratios[f'{figure}_p50_ms']):>7} {_times(ratios[f'{figure}_p99_ms']):>7}"
            )
        lines.append(
            f"{'':>5}  {'requests/s':<24}{level.ours.requests_per_second:>17.1f}  "
            f"{level.baseline.requests_per_second:>17.1f}  "
            f"{_times(ratios['requests_per_second']):>7}"
        )
        lines.append(
            f"{'':>5}  {'Web API calls/request':<24}{level.ours.calls_per_request:>17.2f}  "
            f"{level.baseline.calls_per_request:>17.2f}"
        )
    lines.append(
        f"ratio = {ours} / {baseline}: above 1x means {ours} takes longer "
        "(for requests/s: below 1x means it serves fewer)"
    )
    return "\n".join(lines)


def _times(value: float | None) -> str:
    return "n/a" if value is None else f"{value:.2f}x"


def calls_line(label: str, calls: Counter[str] | dict[str, int]) -> str:
    listing = ", ".join(f"{method} {count}" for method, count in sorted(calls.items()))
    return f"{label}: {sum(calls.values())} ({listing or 'none'})"


def count_and_forget(fake: FakeSlack, into: Counter[str]) -> None:
    """Add the fake's recorded calls to `into`, then reset it so its records stay small."""
    into.update(call.method for call in fake.calls)
    fake.reset()


def peak_rss_mb() -> float:
    """This process's peak resident set size so far, in MiB."""
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    return peak / 2**20 if sys.platform == "darwin" else peak / 2**10
