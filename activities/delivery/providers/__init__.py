"""Providers by channel: the one place a channel gets its sender (add a module, add a line here)."""

from __future__ import annotations

from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from activities.delivery.providers.base import Provider
from activities.delivery.providers.hooks import Subscriptions
from activities.delivery.providers.push import PushProvider
from activities.delivery.providers.slack import SlackProvider
from activities.delivery.providers.sms import SmsProvider
from activities.delivery.providers.smtp import SmtpProvider
from activities.delivery.providers.teams import TeamsProvider
from activities.delivery.providers.webhook import WebhookProvider
from notiflow.contracts import Channel
from notiflow.settings import Settings

#: Channels sent through an outside system. IN_APP is notiflow's own table (activities/delivery/in_app.py).
PROVIDERS: dict[Channel, type] = {Channel.EMAIL: SmtpProvider, Channel.SMS: SmsProvider}


#: Channels whose recipient is a subscription (webhook_subscriptions), read from the database at send time.
SUBSCRIPTION_PROVIDERS: dict[Channel, type] = {
    Channel.WEBHOOK: WebhookProvider,
    Channel.SLACK: SlackProvider,
    Channel.TEAMS: TeamsProvider,
}


def make_providers(
    settings: Settings, sessions: async_sessionmaker[AsyncSession] | None = None
) -> dict[Channel, Provider]:
    providers = {channel: factory(settings) for channel, factory in PROVIDERS.items()}
    if sessions is not None:
        subscriptions = Subscriptions(sessions)
        providers |= {channel: factory(settings, subscriptions) for channel, factory in SUBSCRIPTION_PROVIDERS.items()}
        providers[Channel.PUSH] = PushProvider(settings, sessions)  # the person's devices, read at send time
    return providers
