"""Settings: the tracker team's names work, a bad value fails with one line naming it."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from notiflow.settings import DEV_JWT_SECRET, Settings, SettingsError, load_settings


def test_tracker_team_names_are_read_as_given(monkeypatch):
    monkeypatch.setenv("SMTP_HOST", "mail.example.mg")
    monkeypatch.setenv("SMTP_PORT", "587")
    monkeypatch.setenv("EMAIL_FROM", "noreply@example.mg")
    monkeypatch.setenv("NOTIFICATION_RETRY_ATTEMPTS", "7")
    monkeypatch.setenv("NOTIFICATION_BATCH_SIZE", "20")
    monkeypatch.setenv("NOTIFLOW_TASK_QUEUE", "nq")
    s = load_settings()
    assert (s.smtp_host, s.smtp_port, s.email_from) == ("mail.example.mg", 587, "noreply@example.mg")
    assert (s.notification_retry_attempts, s.notification_batch_size, s.task_queue) == (7, 20, "nq")


def test_defaults_run_on_a_fresh_machine():
    s = Settings()
    assert (s.temporal_address, s.task_queue, s.ui_port, s.api_port) == ("localhost:7233", "notiflow", 8233, 8000)
    assert s.timezone == "Indian/Antananarivo"


@pytest.mark.parametrize(
    "name, value",
    [
        ("SMTP_PORT", "smtp"),
        ("NOTIFLOW_API_PORT", "70000"),
        ("NOTIFLOW_TIMEZONE", "Mars/Olympus"),
        ("NOTIFLOW_DATABASE_URL", "mysql://x"),
    ],
)
def test_bad_setting_names_the_variable(monkeypatch, name, value):
    monkeypatch.setenv(name, value)
    with pytest.raises(SettingsError) as caught:
        load_settings()
    assert name in str(caught.value) and "\n" not in str(caught.value)


def test_cli_stops_at_start_up_with_one_line():
    result = subprocess.run(
        [str(Path(sys.executable).parent / "notiflow"), "migrate"],
        capture_output=True,
        text=True,
        env={"PATH": "", "NOTIFLOW_API_PORT": "eighty"},
    )
    assert result.returncode == 2
    assert "NOTIFLOW_API_PORT" in result.stderr and len(result.stderr.strip().splitlines()) == 1


@pytest.mark.parametrize(
    "secret, says",
    [
        (None, "is not set"),
        ("", "is not set"),
        (DEV_JWT_SECRET, "is not set"),  # the built-in one is public: it counts as none
        ("thirty-one-bytes-is-one-too-few", "is 31 bytes"),
    ],
)
def test_servers_refuse_a_missing_or_short_jwt_secret(monkeypatch, secret, says):
    if secret is not None:
        monkeypatch.setenv("NOTIFLOW_JWT_SECRET", secret)
    with pytest.raises(SettingsError) as caught:
        load_settings().require_jwt_secret()
    message = str(caught.value)
    assert message.startswith("NOTIFLOW_JWT_SECRET") and says in message and "\n" not in message
    assert not secret or secret not in message


def test_a_long_enough_jwt_secret_is_accepted(monkeypatch):
    monkeypatch.setenv("NOTIFLOW_JWT_SECRET", "x" * 32)
    assert load_settings().require_jwt_secret() == "x" * 32


def test_deadlines_read_plain_seconds_and_iso_8601_from_the_environment(monkeypatch):
    from datetime import timedelta

    from notiflow.settings import load_settings

    monkeypatch.setenv("NOTIFLOW_DELIVERY_DEADLINE", "600")
    monkeypatch.setenv("NOTIFLOW_CRITICAL_DELIVERY_DEADLINE", "PT2M")
    settings = load_settings()
    assert (settings.delivery_deadline, settings.critical_delivery_deadline) == (
        timedelta(seconds=600),
        timedelta(minutes=2),
    )
