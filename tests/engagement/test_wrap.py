"""wrap_links on planned rows (pure): which rows, which links, what stays raw; machine opens."""

from __future__ import annotations

import json
from dataclasses import dataclass

from notiflow.engagement import OPEN_PIXEL, is_machine_open, wrap_links
from notiflow.settings import Settings

RAW = "http://tracker.test/admin/issues/ISS-1"
UNSUBSCRIBE = "http://api.test/api/v1/notifications/unsubscribe/tok"
SETTINGS = Settings(api_url="http://api.test", app_url="http://tracker.test")


def row(channel: str, content: str, html: str | None = None, status: str = "PENDING") -> dict:
    return {
        "dedupe_key": f"evt|T|u-1|{channel}",
        "delivery_method": channel,
        "status": status,
        "subject": "ISS-1 assigned",
        "content": content,
        "html_content": html,
        "context_data": {"link": RAW, "unsubscribe_url": UNSUBSCRIBE},
    }


def test_only_this_link_is_wrapped_where_it_ends_and_the_unsubscribe_link_stays():
    text = f"See {RAW}. Not {RAW}2 nor {RAW}/comments. Unsubscribe: {UNSUBSCRIBE}"
    mail = row("EMAIL", text, f'<a href="{RAW}">open</a><a href="{UNSUBSCRIBE}">stop</a></body>')
    [link] = wrap_links([mail], SETTINGS)
    wrapped = f"http://api.test/r/{link.code}"
    assert mail["content"] == f"See {wrapped}. Not {RAW}2 nor {RAW}/comments. Unsubscribe: {UNSUBSCRIBE}"
    assert mail["html_content"] == f'<a href="{wrapped}">open</a><a href="{UNSUBSCRIBE}">stop</a></body>'
    assert (link.link, link.target, link.dedupe_key) == ("issue", RAW, mail["dedupe_key"])
    assert mail["context_data"] == {"link": RAW, "unsubscribe_url": UNSUBSCRIBE, "tracked_link": wrapped}


def test_in_app_webhooks_unsent_rows_and_tracking_off_keep_raw_links():
    rows = [row("IN_APP", RAW), row("EMAIL", RAW, status="CANCELLED")]
    hook = row("WEBHOOK", json.dumps({"link": RAW}))
    assert wrap_links([*rows, hook], SETTINGS) == []
    off = row("SMS", f"ISS-1 {RAW}")
    assert wrap_links([off], SETTINGS.model_copy(update={"track_clicks": False})) == []
    assert off["content"] == f"ISS-1 {RAW}" and "tracked_link" not in off["context_data"]


def test_slack_and_teams_bodies_carry_the_wrapped_link_each_its_own_code():
    slack, teams = (
        row("SLACK", json.dumps({"link": RAW, "issue": {"id": "ISS-1"}})),
        row("TEAMS", json.dumps({"link": RAW})),
    )
    one, two = wrap_links([slack, teams], SETTINGS)
    assert json.loads(slack["content"])["link"] == f"http://api.test/r/{one.code}"
    assert json.loads(teams["content"])["link"] == f"http://api.test/r/{two.code}" and one.code != two.code


def test_the_pixel_only_in_html_mail_when_opens_are_tracked():
    opens = SETTINGS.model_copy(update={"track_opens": True})
    mail, plain, sms = row("EMAIL", RAW, f"<p>{RAW}</p></body>"), row("EMAIL", RAW), row("SMS", RAW)
    links = wrap_links([mail, plain, sms], opens)
    [pixel] = [link for link in links if link.link == OPEN_PIXEL]
    assert pixel.dedupe_key == mail["dedupe_key"]
    assert mail["html_content"].endswith(
        f'<img src="http://api.test/o/{pixel.code}.gif" width="1" height="1" '
        'alt="" style="display:block;border:0"></body>'
    )
    assert "/o/" not in plain["content"] + sms["content"]


def test_machine_opens():
    assert is_machine_open("Mozilla/5.0 (via ggpht.com GoogleImageProxy)", "203.0.113.9")
    assert is_machine_open("Mozilla/5.0", "203.0.113.9")  # Apple Mail Privacy Protection
    assert is_machine_open("Thunderbird", "17.58.1.2")  # Apple's network
    assert not is_machine_open("Mozilla/5.0 (X11; Linux x86_64) Firefox/128.0", "203.0.113.9")
    assert not is_machine_open(None, "not an address")


@dataclass
class Planned:
    """A row object (attributes instead of keys), as a queue-row model would be."""

    delivery_method: str
    content: str
    context_data: dict
    status: str = "PENDING"
    subject: str | None = None
    html_content: str | None = None
    dedupe_key: str = "evt|T|u-1|SMS"


def test_row_objects_are_wrapped_like_dicts():
    planned = Planned("SMS", f"ISS-1 {RAW}", {"link": RAW})
    [link] = wrap_links([planned], SETTINGS)
    assert planned.content == f"ISS-1 http://api.test/r/{link.code}" and link.dedupe_key == planned.dedupe_key
    assert planned.context_data["tracked_link"] == f"http://api.test/r/{link.code}"
