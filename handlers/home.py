"""Events API: App Home."""

from __future__ import annotations

from typing import Any

from slack_bolt.async_app import AsyncApp, AsyncBoltContext
from slack_sdk.web.async_client import AsyncWebClient

from bot.contracts.service import bundles_for
from bot.services import services_of
from bot.summary.home import build_home
from storage.db import read_only


async def handle_app_home_opened(
    event: dict[str, Any], client: AsyncWebClient, context: AsyncBoltContext
) -> None:
    if event.get("tab", "home") != "home":
        return
    services = services_of(context)
    user = event["user"]
    async with services.sessions() as session:
        await read_only(session)
        bundles = await bundles_for(session=session, viewer=user)
    await client.views_publish(
        user_id=user, view=build_home(viewer=user, bundles=bundles, today=services.today())
    )


def register(app: AsyncApp) -> None:
    app.event("app_home_opened")(handle_app_home_opened)
