"""The provider interface: one module per outside system (SMTP today), each sending one message at a time.

A provider turns a queued, rendered message into a ``Receipt`` or raises:
``PermanentDeliveryError`` when retrying cannot help (the row ends FAILED at once),
``TransientDeliveryError`` when the system may accept it later (retried until the
delivery deadline). Concurrency, recording every answer, heartbeats and giving up
are the deliver activity's job (``activities/delivery/activities.py``), the same for
every provider; a provider only speaks its protocol.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Protocol

from notiflow.contracts import Channel


class PermanentDeliveryError(Exception):
    """Retrying cannot help (bad address, 5xx, template error): the row ends FAILED.

    ``invalid_address``: the receiving system said the address does not exist (an SMS gateway's "number
    invalid", a hook's 410 Gone): the address goes on the suppression list (reason ``INVALID``).
    """

    def __init__(self, message: str, *, invalid_address: bool = False):
        super().__init__(message)
        self.invalid_address = invalid_address


class TransientDeliveryError(Exception):
    """The provider may accept it later (connection refused, 4xx, timeout).

    ``retry_after`` (seconds): the provider asked not to be called again sooner (HTTP ``Retry-After``);
    the deliver activity waits at least that long before the batch's next attempt.
    """

    def __init__(self, message: str, *, retry_after: float | None = None):
        super().__init__(message)
        self.retry_after = retry_after


@dataclass(frozen=True)
class OutgoingMessage:
    """A queue row as every provider sees it: rendered, addressed, with its stable id."""

    queue_id: str
    address: str
    recipient_name: str | None
    subject: str
    text: str
    html: str | None
    issue_id: str | None
    link: str | None
    unsubscribe_url: str | None
    notification_type: str
    #: a critical notification (PUSH: a longer TTL and ``Urgency: high``)
    critical: bool = False


@dataclass(frozen=True)
class Receipt:
    provider_message_id: str
    response: str
    #: which system took it, when a channel has more than one (``smtp:fallback relay.example:25``); on the row
    provider: str | None = None


class Provider(Protocol):
    """What the deliver activity needs of a channel's provider."""

    channel: Channel
    #: how many messages it may have in flight at once (its connection pool)
    concurrency: int

    async def send(self, message: OutgoingMessage, *, sent_at: datetime) -> Receipt: ...

    async def close(self) -> None: ...
