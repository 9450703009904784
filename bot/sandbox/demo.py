"""The demo workspace: the people of the example contract, that contract, and its history.

People and channels go into the local Slack; the contract is imported through the real
importer (which looks people up in that Slack); the weeks before the sandbox's "now" are
written to the storage tables as the bot would have recorded them, so summaries, App Home
and digests have figures, trends and check-in completion to show.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta
from pathlib import Path
from zoneinfo import ZoneInfo

from slack_sdk.web.async_client import AsyncWebClient

from bot.contracts.io import import_file
from bot.core.calendar import period_key
from bot.core.clock import ManualClock
from bot.sandbox.fake_slack import FakeSlack
from bot.sandbox.manifest import message_text
from storage.db import SessionFactory, writing
from storage.models import (
    ActivityStatus,
    CheckIn,
    Evidence,
    Feedback,
    Measurement,
    Risk,
)
from storage.queries.sandbox import activities_of, indicators_of

DEMO_CONTRACT = Path(__file__).with_name("demo_contract.yml")
# Imported as of the contract's first day; the sandbox's clock then starts on a Wednesday
# in week 10, two days before Dana's next check-in.
IMPORTED_AT = datetime(2027, 1, 4, 8, 0, tzinfo=UTC)
DEMO_NOW = datetime(2027, 3, 10, 9, 0, tzinfo=UTC)
BERLIN = ZoneInfo("Europe/Berlin")

GENERAL = "C0GENERAL1"
WINS = "C0WINS001"


@dataclass(frozen=True, slots=True)
class Person:
    id: str
    name: str
    real_name: str
    email: str
    tz: str
    title: str


PEOPLE = (
    Person("U0LEAD001", "dana", "Dana Leader", "dana@example.com", "Europe/Berlin", "Leader"),
    Person("U0SPON001", "sam", "Sam Sponsor", "sam@example.com", "Europe/Berlin", "Sponsor"),
    Person("U0HRBP001", "hana", "Hana HR", "hana@example.com", "Europe/Berlin", "Owner (HR)"),
    Person(
        "U0VP00001", "victor", "Victor VP", "victor@example.com", "America/New_York", "Escalation"
    ),
    Person("U0PEER001", "pia", "Pia Peer", "pia@example.com", "Europe/Berlin", "Peer"),
    Person("U0PEER002", "raj", "Raj Report", "raj@example.com", "Asia/Kolkata", "Direct report"),
    Person("U0PEER003", "paul", "Paul Three", "peer.three@example.com", "Europe/Berlin", "Peer"),
)
CHANNELS = ((GENERAL, "general"), (WINS, "wins"))


def add_people(fake: FakeSlack) -> None:
    """The workspace's members and channels (the same with or without the demo contract)."""
    for person in PEOPLE:
        user = fake.add_user(
            person.id,
            name=person.name,
            real_name=person.real_name,
            email=person.email,
            tz=person.tz,
        )
        user["profile"]["title"] = person.title
    for channel_id, name in CHANNELS:
        fake.add_channel(channel_id, name=name)


# Things people said in #general that make good evidence (the message shortcut's demo).
CHANNEL_MESSAGES = (
    (
        datetime(2027, 2, 19, 9, 12, tzinfo=UTC),
        "U0PEER002",
        "The incident review for the 17 Feb outage is in the wiki: "
        "https://wiki.example.com/incidents/2027-02-17. Marta chaired it on her own :tada:",
    ),
    (
        datetime(2027, 3, 3, 13, 5, tzinfo=UTC),
        "U0PEER001",
        "February's delivery dashboard is out: median cycle time *39 days*, down from 45 "
        "in December. https://dash.example.com/delivery/2027-02",
    ),
    (
        datetime(2027, 3, 9, 15, 40, tzinfo=UTC),
        "U0LEAD001",
        "Build-versus-buy for observability: the draft rationale is open for comments "
        "until Friday. https://docs.example.com/observability-build-vs-buy",
    ),
)

# (ISO week, confidence, wins, reflection); a week that is absent was missed, "skip" skipped.
CHECKINS: tuple[tuple[int, int | str, str, str], ...] = (
    (1, 3, "Kick-off with Sam; coaching provider chosen.", "Need a clearer Q1 focus."),
    (2, 3, "Reliability roadmap draft shared with product leads.", "Too much in the draft."),
    (3, 4, "First coaching session: mapping stakeholders.", "Listening before proposing."),
    (4, 4, "Cycle time down to 43 days; risk register reviewed.", "The register habit sticks."),
    (5, "skip", "", ""),
    (6, 3, "Pulse survey: engagement 65.", "Two teams still feel unheard."),
    (7, 4, "Q1 roadmap review: product leads chose a trade-off.", "Framing costs in weeks works."),
    (9, 4, "Cycle time 39 days; 64% of risks surfaced in 48 h.", "Delegating reviews is hard."),
)
# Indicator values by ISO week; recorded with that week's check-in.
MEASUREMENTS = {4: {"I2": 43.0, "I3": 52.0}, 6: {"I1": 65.0}, 9: {"I2": 39.0, "I3": 64.0}}


def checkin_moment(week: int) -> datetime:
    """Friday of ISO week `week` of 2027, 15:40 in Berlin: just after the prompt."""
    return datetime.combine(
        date.fromisocalendar(2027, week, 5), time(15, 40), tzinfo=BERLIN
    ).astimezone(UTC)


async def seed_demo(
    *, sessions: SessionFactory, client: AsyncWebClient, fake: FakeSlack, clock: ManualClock
) -> int:
    """Import the example contract with a few weeks of history; returns its id."""
    for at, user, text in CHANNEL_MESSAGES:
        clock.set(at)
        written = message_text(text, users=fake.users.values(), channels=fake.channels.values())
        fake.post_user_message(GENERAL, user=user, text=written)
    clock.set(IMPORTED_AT)
    results, problems = await import_file(
        DEMO_CONTRACT,
        sessions=sessions,
        client=client,
        draft=False,
        now=IMPORTED_AT,
        operator="the sandbox demo",
    )
    if problems or not results:
        raise RuntimeError(f"the demo contract did not import: {problems}")
    contract_id = results[0].contract_id
    await _write_history(sessions, contract_id)
    clock.set(DEMO_NOW)
    return contract_id


async def _write_history(sessions: SessionFactory, contract_id: int) -> None:
    async with sessions() as session:
        await writing(session)
        indicators = {
            i.key: i for i in await indicators_of(session=session, contract_id=contract_id)
        }
        for week, confidence, wins, reflection in CHECKINS:
            at = checkin_moment(week)
            skipped = confidence == "skip"
            checkin = CheckIn(
                contract_id=contract_id,
                period_key=period_key(date.fromisocalendar(2027, week, 5)),
                status="skipped" if skipped else "answered",
                skip_reason="vacation" if skipped else None,
                confidence=None if isinstance(confidence, str) else confidence,
                wins=wins,
                reflection=reflection,
                submitted_by="U0LEAD001",
                created_at=at,
                updated_at=at,
            )
            session.add(checkin)
            await session.flush()
            for key, value in MEASUREMENTS.get(week, {}).items():
                indicator = indicators[key]
                session.add(
                    Measurement(
                        indicator_id=indicator.id or 0,
                        value=value,
                        measured_at=at,
                        source=indicator.source,
                        recorded_by="U0LEAD001",
                        checkin_id=checkin.id,
                        created_at=at,
                    )
                )
            if week == 7:
                session.add(
                    Risk(
                        contract_id=contract_id,
                        checkin_id=checkin.id,
                        text="Two senior engineers move to the Q3 launch team in April; "
                        "the incident review rotation may slip.",
                        needs_sponsor_help=True,
                        raised_by="U0LEAD001",
                        created_at=at,
                    )
                )
            if week == 9:
                session.add(
                    Evidence(
                        contract_id=contract_id,
                        item_type="indicator",
                        item_key="I3",
                        url="https://wiki.example.com/platform/risk-register-2027-03",
                        note="Risk register review: 64% of new risks surfaced within 48 hours.",
                        source="checkin",
                        added_by="U0LEAD001",
                        checkin_id=checkin.id,
                        created_at=at,
                    )
                )
        activities = await activities_of(session=session, contract_id=contract_id)
        for activity in activities:
            if activity.key == "D1":
                activity.status, activity.progress = ActivityStatus.in_progress, 40
            elif activity.key == "D3":
                activity.status, activity.progress = ActivityStatus.in_progress, 15
            activity.updated_at = checkin_moment(9)
            session.add(activity)
        session.add(
            Evidence(
                contract_id=contract_id,
                item_type="activity",
                item_key="D1",
                note="Coaching session 3: practised framing reliability trade-offs in "
                "delivery weeks for product leads.",
                source="command",
                added_by="U0LEAD001",
                created_at=checkin_moment(6),
            )
        )
        for author, polarity, days, situation, behaviour, impact in (
            (
                "U0PEER001",
                "strength",
                46,
                "Q1 roadmap review with the product leads.",
                "Dana laid out three reliability trade-offs, each with its cost in delivery weeks.",
                "The product leads chose one in the meeting instead of escalating it.",
            ),
            (
                "U0PEER002",
                "development",
                30,
                "The incident review on 2 February.",
                "Dana took over the facilitation when the discussion stalled.",
                "The engineering manager chairing it did not get to practise closing a review.",
            ),
        ):
            at = IMPORTED_AT + timedelta(days=days)
            session.add(
                Feedback(
                    contract_id=contract_id,
                    expectation_key="E1" if polarity == "strength" else "E2",
                    polarity=polarity,
                    situation=situation,
                    behaviour=behaviour,
                    impact=impact,
                    anonymous=False,
                    author_id=author,
                    created_at=at,
                )
            )
        await session.commit()
