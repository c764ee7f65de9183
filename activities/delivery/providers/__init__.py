"""Providers by channel: the one place a channel gets its sender (add a module, add a line here)."""

from __future__ import annotations

from activities.delivery.providers.base import Provider
from activities.delivery.providers.sms import SmsProvider
from activities.delivery.providers.smtp import SmtpProvider
from notiflow.contracts import Channel
from notiflow.settings import Settings

#: Channels sent through an outside system. IN_APP is notiflow's own table (activities/delivery/in_app.py).
PROVIDERS: dict[Channel, type] = {Channel.EMAIL: SmtpProvider, Channel.SMS: SmsProvider}


def make_providers(settings: Settings) -> dict[Channel, Provider]:
    return {channel: factory(settings) for channel, factory in PROVIDERS.items()}
