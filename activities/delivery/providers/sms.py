"""The SMS provider: an HTTP gateway through httpx, behind the SSRF guard.

Two dialects (``NOTIFLOW_SMS_FORMAT``):

- ``json`` (default): ``POST NOTIFLOW_SMS_URL`` with ``{"to": "+261…", "from": sender, "text": …}`` and
  ``Authorization: Bearer NOTIFLOW_SMS_TOKEN``; an ``Idempotency-Key`` header carries the queue row's id.
- ``twilio``: Twilio's Messages API, which many gateways copy: a form body (``To``, ``From``, ``Body``) and basic
  auth — the account SID taken from the URL (``…/Accounts/{SID}/Messages.json``) or given as ``SID:token``.

Every request goes through the SSRF guard (``notiflow.outbound``): the gateway's address is checked and
pinned like a webhook's, so a gateway URL on a private address needs ``NOTIFLOW_OUTBOUND_ALLOW``.

Answers: 2xx = sent, with the gateway's message id (``id`` / ``sid`` / ``message_id`` of its JSON); 429, 5xx,
timeouts and refused connections are transient (retried, not before ``Retry-After``); any other 4xx is
permanent, with the gateway's own words. Texts are cut to ``NOTIFLOW_SMS_MAX_LENGTH`` characters by
``fit_text``, which always keeps the issue id, and the link when it fits.
"""

from __future__ import annotations

import email.utils
import json
import re
from datetime import datetime, timezone
from urllib.parse import urlsplit

from activities.delivery.providers.base import (
    OutgoingMessage,
    PermanentDeliveryError,
    Receipt,
    TransientDeliveryError,
)
from notiflow.contracts import Channel
from notiflow.outbound import OutboundClient, OutboundRefused, OutboundResponse, OutboundUnavailable
from notiflow.settings import Settings

#: Marks a cut text: three ASCII dots, since one character outside GSM-7 (such as "…") makes a segment 70 long.
ELLIPSIS = "..."
#: The longest gateway answer kept in an error message or on the row.
ANSWER_CHARS = 300
#: The longest wait a gateway's Retry-After may ask for (a later retry still honours the delivery deadline).
MAX_RETRY_AFTER = 3600.0

_SPACES = re.compile(r"[ \t\r\f\v]+")
_BLANK_LINES = re.compile(r"\n\s*\n+")


def fit_text(text: str, max_length: int, *, issue_id: str | None = None, link: str | None = None) -> str:
    """The SMS text in at most ``max_length`` characters: the issue id always, the link when it fits.

    Whitespace is tightened first (a template's blank lines cost characters). A text that
    does not name the issue starts with its id. When the text is too long, the link is
    taken out, the rest cut (``...``) so that the link fits after it; if even the text up
    to the issue id and the link cannot both fit, the link is dropped.
    """
    text = _BLANK_LINES.sub("\n", _SPACES.sub(" ", text)).strip()
    text = "\n".join(line.strip() for line in text.split("\n"))
    if issue_id and issue_id not in text:
        text = f"{issue_id}: {text}" if text else issue_id
    if len(text) <= max_length:
        return text
    core = text
    if link and link in core:
        core = re.sub(r"\s*" + re.escape(link) + r"\s*", " ", core).strip()
    keep = 0
    if issue_id and issue_id in core:
        keep = core.index(issue_id) + len(issue_id)
        if keep + len(ELLIPSIS) > max_length:  # named too late to survive the cut: say it first
            core, keep = f"{issue_id}: {core}", len(issue_id)
    tail = f" {link}" if link else ""
    if tail and keep + len(ELLIPSIS) + len(tail) > max_length:
        tail = ""
    budget = max_length - len(tail)
    if len(core) > budget:
        cut = max(budget - len(ELLIPSIS), keep)
        head = core[:cut]
        space = head.rfind(" ", keep)
        if space > keep and space >= cut - 15:  # end on a word when one ends close by
            head = head[:space]
        core = head.rstrip(" ,;:-") + ELLIPSIS
    return (core + tail)[:max_length]


def retry_after_seconds(value: str | None, now: datetime | None = None) -> float | None:
    """``Retry-After`` as seconds: delta-seconds or an HTTP date (RFC 9110 §10.2.3); None if absent or unreadable."""
    if not value:
        return None
    value = value.strip()
    if value.isdigit():
        return min(float(value), MAX_RETRY_AFTER)
    try:
        when = email.utils.parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return None
    if when.tzinfo is None:
        when = when.replace(tzinfo=timezone.utc)
    seconds = (when - (now or datetime.now(timezone.utc))).total_seconds()
    return min(max(seconds, 0.0), MAX_RETRY_AFTER)


#: A gateway's words for "this number does not exist" (Twilio 21211 / 21614 say it in words too).
_NUMBER_INVALID = re.compile(
    r"(invalid|not (a )?valid|unknown|does not exist|unallocated|disconnected|not (a )?mobile)[^.;]{0,40}"
    r"(number|phone|recipient|destination|msisdn|subscriber)"
    r"|(number|phone|recipient|destination|msisdn|subscriber)[^.;]{0,60}"
    r"(invalid|not (a )?valid|unknown|does not exist|unallocated|disconnected|not (a )?mobile)",
    re.IGNORECASE,
)


def number_invalid(status: int, answer: str) -> bool:
    """A permanent answer saying the number itself is wrong (400/404/410/422 naming it), not our request."""
    return status in (400, 404, 410, 422) and bool(_NUMBER_INVALID.search(answer))


def _json(response: OutboundResponse):
    try:
        return json.loads(response.text)
    except ValueError:
        return None


def _answer(response: OutboundResponse) -> str:
    """The gateway's words: its JSON ``message``/``error`` when it gives one, else the body, kept short."""
    text = response.text.strip()
    body = _json(response)
    if isinstance(body, dict):
        for key in ("message", "error_message", "error", "detail", "description"):
            value = body.get(key)
            if isinstance(value, str) and value.strip():
                code = body.get("code")
                text = (
                    f"{value.strip()} (code {code})"
                    if code is not None and not isinstance(code, dict)
                    else value.strip()
                )
                break
    text = " ".join(text.split())
    return text[:ANSWER_CHARS] + ("…" if len(text) > ANSWER_CHARS else "")


def _message_id(response: OutboundResponse) -> str | None:
    body = _json(response)
    if isinstance(body, dict):
        for key in ("id", "sid", "message_id", "messageId", "uuid"):
            if body.get(key) not in (None, ""):
                return str(body[key])[:300]
        for key in ("messages", "data"):  # {"messages": [{"id": …}]} and {"data": {"id": …}}
            inner = body.get(key)
            inner = inner[0] if isinstance(inner, list) and inner else inner
            if isinstance(inner, dict):
                for sub in ("id", "sid", "message_id", "messageId"):
                    if inner.get(sub) not in (None, ""):
                        return str(inner[sub])[:300]
    return None


class SmsProvider:
    """One guarded HTTP client per worker; at most ``NOTIFLOW_SMS_CONCURRENCY`` requests in flight."""

    channel = Channel.SMS

    def __init__(self, settings: Settings):
        self.settings = settings
        self.concurrency = settings.sms_concurrency
        self._client: OutboundClient | None = None
        host = urlsplit(settings.sms_url).netloc if settings.sms_url else ""
        self.name = f"sms:{settings.sms_format} {host}".strip()

    def _http(self) -> OutboundClient:
        if self._client is None:
            self._client = OutboundClient(self.settings.outbound_allowlist, timeout=self.settings.sms_timeout_seconds)
        return self._client

    def _request(self, message: OutgoingMessage, text: str) -> dict:
        s = self.settings
        token = s.sms_token.get_secret_value() if s.sms_token else ""
        if s.sms_format == "twilio":
            user, _, password = token.partition(":") if ":" in token else ("", "", token)
            if not user:
                match = re.search(r"/Accounts/([^/]+)/", s.sms_url or "")
                user = match.group(1) if match else ""
            return {
                "data": {"To": message.address, "From": s.sms_sender or "", "Body": text},
                "auth": (user, password),
                "headers": {"User-Agent": "notiflow-sms"},
            }
        headers = {
            "Idempotency-Key": message.queue_id,
            "Content-Type": "application/json",
            "User-Agent": "notiflow-sms",
        }
        if token:
            headers["Authorization"] = f"Bearer {token}"
        body = {"to": message.address, "from": s.sms_sender or "", "text": text}
        return {"content": json.dumps(body, ensure_ascii=False).encode(), "headers": headers}

    async def send(self, message: OutgoingMessage, *, sent_at) -> Receipt:
        s = self.settings
        if not s.sms_url:
            raise PermanentDeliveryError("NOTIFLOW_SMS_URL is not set: SMS cannot be delivered")
        if not message.address.startswith("+"):
            raise PermanentDeliveryError(f"not an E.164 phone number: {message.address!r}")
        text = fit_text(message.text, s.sms_max_length, issue_id=message.issue_id, link=message.link)
        try:
            response = await self._http().request("POST", s.sms_url, **self._request(message, text))
        except OutboundRefused as exc:
            raise PermanentDeliveryError(f"SMS gateway URL refused: {exc}") from None
        except (TimeoutError, OutboundUnavailable, OSError) as exc:
            raise TransientDeliveryError(f"SMS gateway unreachable: {exc or type(exc).__name__}") from None
        status = response.status_code
        if 200 <= status < 300:
            gateway_id = _message_id(response)
            return Receipt(
                provider_message_id=gateway_id or f"sms-{message.queue_id}",
                response=f"{status} {_answer(response)}".strip(),
                provider=self.name,
            )
        answer = f"SMS gateway answered {status}: {_answer(response) or 'no explanation'}"
        if status == 429 or status >= 500:
            raise TransientDeliveryError(answer, retry_after=response.retry_after())
        raise PermanentDeliveryError(answer, invalid_address=number_invalid(status, answer))

    async def close(self) -> None:
        if self._client is not None:
            await self._client.aclose()
            self._client = None
