"""Settings from the environment (prefix ``NOTIFLOW_``).

The issue tracker team's own names (``SMTP_HOST``, ``EMAIL_FROM``,
``NOTIFICATION_RETRY_ATTEMPTS`` …) are accepted as given, without the prefix.
A bad value stops start-up with one line naming the variable.
"""

from __future__ import annotations

import base64
import binascii
import functools
import hashlib
from datetime import timedelta
from typing import Literal

from pydantic import AliasChoices, Field, SecretStr, ValidationError, field_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

from notiflow.types import TimeZoneName

#: What `notiflow dev`, `notiflow demo` and tests sign tokens with; `notiflow api` and `notiflow worker` refuse it.
DEV_JWT_SECRET = "dev-secret-change-me-in-production-32b"
MIN_JWT_SECRET_BYTES = 32


@functools.lru_cache(maxsize=1)
def default_build_id() -> str:
    """The worker's default build id: the package version and, in a git checkout, its revision (``0.1.0+abc1234``).

    Without git (a container image, an sdist) the package version alone; never an error.
    """
    from importlib.metadata import PackageNotFoundError, version

    try:
        package = version("notiflow")
    except PackageNotFoundError:
        package = "0.0.0"
    import subprocess
    from pathlib import Path

    try:
        revision = subprocess.run(
            ["git", "rev-parse", "--short=7", "HEAD"],
            cwd=Path(__file__).resolve().parent,
            capture_output=True,
            text=True,
            timeout=5,
            check=True,
        ).stdout.strip()
    except (OSError, subprocess.SubprocessError):
        revision = ""
    return f"{package}+{revision}" if revision else package


def _tracker_name(name: str) -> AliasChoices:
    """Accept the tracker team's bare name and the prefixed one."""
    return AliasChoices(name, f"NOTIFLOW_{name}")


class Settings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="NOTIFLOW_", extra="ignore", populate_by_name=True)

    database_url: str | None = Field(
        default=None,
        description="postgresql+asyncpg://user:pass@host:5432/db; unset in `notiflow dev` = embedded PostgreSQL",
    )
    temporal_address: str = "localhost:7233"
    temporal_namespace: str = "default"
    task_queue: str = "notiflow"
    build_id: str = Field(
        default_factory=default_build_id,
        min_length=1,
        max_length=255,
        description="this worker's version in Worker Deployment `notiflow` (README, Deploying a new version); "
        "default the package version and git revision (0.1.0+abc1234), the package version alone without git",
    )
    ui_port: int = Field(default=8233, ge=1, le=65535)
    api_port: int = Field(default=8000, ge=1, le=65535)
    api_host: str = "127.0.0.1"
    app_url: str = "http://localhost:3000"
    api_url: str = Field(
        default="", description="public base URL of this API (unsubscribe links); default http://localhost:{api_port}"
    )
    ui_url: str = Field(
        default="", description="public base URL of the Temporal web UI; default http://localhost:{ui_port}"
    )
    jwt_secret: str = Field(
        default=DEV_JWT_SECRET,
        description="HS256 secret of API tokens and unsubscribe links; at least 32 bytes outside `notiflow dev`/`demo`",
    )
    timezone: TimeZoneName = "Indian/Antananarivo"
    data_dir: str = Field(default=".notiflow", description="where `notiflow dev` keeps its databases and caught mail")
    codec_key: SecretStr | None = Field(
        default=None,
        description="base64 of 32 random bytes: encrypts Temporal payloads (AES-256-GCM); unset = plaintext",
    )
    payload_keys: SecretStr | None = Field(
        default=None,
        description="keyring of payload keys, `kid:base64key,kid:base64key`: the first encrypts, every one decrypts "
        "(rotation); NOTIFLOW_CODEC_KEY, when also set, is one more decrypting key",
    )
    codec_host: str = Field(default="127.0.0.1", description="`notiflow codec`: the private codec listener's address")
    codec_port: int = Field(default=8081, ge=1, le=65535, description="`notiflow codec` and `notiflow dev`: its port")
    max_body_bytes: int = Field(default=1_048_576, ge=1024, description="larger request bodies are refused (413)")
    rate_limit_per_minute: int = Field(
        default=600, ge=1, description="requests per client (token subject, else address) per minute, per API process"
    )
    auth_failure_limit_per_minute: int = Field(
        default=10, ge=1, description="refused bearer tokens per address per minute before further tries get 429"
    )

    smtp_host: str | None = Field(default=None, validation_alias=_tracker_name("SMTP_HOST"))
    smtp_port: int = Field(default=25, ge=1, le=65535, validation_alias=_tracker_name("SMTP_PORT"))
    smtp_username: str | None = Field(default=None, validation_alias=_tracker_name("SMTP_USERNAME"))
    smtp_password: str | None = Field(default=None, validation_alias=_tracker_name("SMTP_PASSWORD"))
    smtp_starttls: bool = Field(default=False, validation_alias=_tracker_name("SMTP_STARTTLS"))
    smtp_pool_size: int = Field(default=25, ge=1, le=100)
    smtp_timeout_seconds: float = Field(default=15.0, gt=0)
    email_from: str = Field(default="notiflow@localhost", validation_alias=_tracker_name("EMAIL_FROM"))

    smtp_fallback_host: str | None = Field(
        default=None,
        validation_alias=_tracker_name("SMTP_FALLBACK_HOST"),
        description="a second mail relay, used while the primary refuses connections or times out",
    )
    smtp_fallback_port: int = Field(default=25, ge=1, le=65535, validation_alias=_tracker_name("SMTP_FALLBACK_PORT"))
    smtp_fallback_username: str | None = Field(default=None, validation_alias=_tracker_name("SMTP_FALLBACK_USERNAME"))
    smtp_fallback_password: str | None = Field(default=None, validation_alias=_tracker_name("SMTP_FALLBACK_PASSWORD"))
    smtp_fallback_starttls: bool = Field(default=False, validation_alias=_tracker_name("SMTP_FALLBACK_STARTTLS"))

    sms_url: str | None = Field(default=None, description="the SMS gateway's endpoint (http(s)://…); unset = no SMS")
    sms_token: SecretStr | None = Field(
        default=None,
        description="bearer token (json) or auth token / SID:token (twilio) of the SMS gateway",
    )
    sms_sender: str | None = Field(default=None, description="the sender id or number the gateway sends from")
    sms_format: Literal["json", "twilio"] = Field(
        default="json",
        description="json: POST {to, from, text} + Bearer; twilio: Twilio's Messages API (form, basic auth)",
    )
    sms_default_region: str = Field(
        default="MG",
        description="region a phone number written without +country code is read in (ISO 3166, e.g. MG)",
    )
    sms_max_length: int = Field(
        default=160, ge=20, le=1600, description="characters per SMS text; longer texts are cut"
    )
    sms_timeout_seconds: float = Field(default=10.0, gt=0, le=15)
    sms_concurrency: int = Field(default=10, ge=1, le=100, description="SMS requests in flight per worker")
    vapid_private_key: SecretStr | None = Field(
        default=None,
        description="the VAPID private key (P-256, base64url of the raw 32 bytes, as `notiflow vapid-keys` prints "
        "it, or PEM); unset = no Web Push",
    )
    vapid_subject: str = Field(
        default="mailto:notiflow@localhost",
        description="the VAPID `sub` claim: a mailto: or https: URL the push service may contact",
    )
    fcm_project_id: str | None = Field(default=None, description="the Firebase project phones get FCM pushes from")
    fcm_service_account: SecretStr | None = Field(
        default=None,
        description="the Firebase service account (its JSON, or a path to the file) FCM access tokens are made from",
    )
    fcm_url: str = Field(default="https://fcm.googleapis.com", description="FCM's base URL (a local receiver in tests)")
    apns_team_id: str | None = Field(default=None, description="the Apple developer team id (the APNs token's `iss`)")
    apns_key_id: str | None = Field(default=None, description="the APNs auth key's id (the token's `kid`)")
    apns_private_key: SecretStr | None = Field(
        default=None,
        description="the APNs auth key (.p8: a P-256 PEM, or a path to the file) provider tokens are signed with",
    )
    apns_topic: str | None = Field(default=None, description="the iOS app's bundle id (`apns-topic`)")
    apns_url: str = Field(
        default="https://api.push.apple.com",
        description="APNs' base URL (https://api.sandbox.push.apple.com for development builds; a local receiver in "
        "tests)",
    )
    push_max_devices: int = Field(
        default=10, ge=1, le=100, description="push subscriptions per person; a new one drops the oldest"
    )
    push_timeout_seconds: float = Field(default=10.0, gt=0, le=15)
    push_concurrency: int = Field(default=10, ge=1, le=100, description="push requests in flight per worker")
    critical_fallback: str = Field(
        default="EMAIL,SMS,IN_APP",
        description="channel order a FAILED critical notification falls back along (comma-separated)",
    )

    bounce_address: str | None = Field(
        default=None,
        description="envelope sender base for VERP (bounces@tracker.example → bounces+{code}@tracker.example); "
        "unset = EMAIL_FROM as envelope sender, no VERP",
    )
    soft_bounce_limit: int = Field(
        default=3, ge=1, le=100, description="soft bounces (4.x.x) of one address within 7 days that suppress it"
    )
    bounce_host: str = Field(default="127.0.0.1", description="where `notiflow bounces` listens (0.0.0.0: all)")
    bounce_port: int = Field(default=2525, ge=1, le=65535, description="the SMTP port of `notiflow bounces`")

    notification_retry_attempts: int = Field(
        default=3, ge=1, le=100, validation_alias=_tracker_name("NOTIFICATION_RETRY_ATTEMPTS")
    )
    notification_batch_size: int = Field(
        default=200,
        ge=1,
        le=1000,
        validation_alias=_tracker_name("NOTIFICATION_BATCH_SIZE"),
        description="queue rows per deliver activity (the tracker's example says 50: 200 sends a fan-out 39 % "
        "faster here, one activity's bookkeeping per 200 rows; SMTP concurrency stays NOTIFLOW_SMTP_POOL_SIZE)",
    )
    delivery_page_size: int = Field(
        default=2000,
        ge=1,
        le=3000,
        description="people per slice: an audience larger than this is planned and sent a slice at a time, by a run "
        "of its own that continues as new, each slice planned while the one before is sent (the rows held for "
        "quiet hours are then read in pages of this many); a slice's deliveries are one payload, ~110 bytes per "
        "person and channel, so at most 3,000 keeps six channels' under Temporal's 2 MB",
    )
    retry_initial_seconds: float = Field(default=5.0, gt=0, description="first retry delay; doubles each attempt")
    retry_max_seconds: float = Field(
        default=60.0,
        gt=0,
        description="cap on the retry delay: delivery resumes at most this long after a provider returns",
    )
    worker_metrics_address: str | None = Field(
        default=None,
        description="host:port where `notiflow worker` serves Temporal's Prometheus metrics (e.g. 0.0.0.0:9464): "
        "workflow task failures (temporal_workflow_task_execution_failed), activity latencies, slots",
    )
    delivery_deadline: timedelta = Field(
        default=timedelta(hours=24),
        gt=timedelta(0),
        description="how long a transient failure (provider down, 4xx, timeout) is retried before the row is FAILED; "
        "seconds (86400) or ISO 8601 (PT24H)",
    )
    critical_delivery_deadline: timedelta = Field(
        default=timedelta(minutes=5),
        gt=timedelta(0),
        description="the same for a critical notification, so that it falls back to the person's next channel "
        "(NOTIFLOW_CRITICAL_FALLBACK) within minutes instead of waiting out a long outage",
    )

    planning_process_from: int = Field(
        default=2000,
        ge=0,
        description="a large audience's slice of at least this many people is decided and rendered in a process of "
        "the worker's own (started with the audience's first slice), on another core than the sending, not under "
        "the same GIL; any other plan is rendered in a thread; 0: always in a thread",
    )

    # Worker tuning (issue 12; README "Sizing"). Each bounds one resource of one `notiflow worker` process.
    worker_max_concurrent_activities: int = Field(
        default=50,
        ge=1,
        le=1000,
        description="activities running at once in one worker: bounds its open DB sessions and in-flight sends "
        "(memory, connections); beyond it tasks wait in Temporal, not in the worker",
    )
    worker_max_concurrent_workflow_tasks: int = Field(
        default=100,
        ge=2,
        le=1000,
        description="workflow activations processed at once (CPU: they share one Python core with the activities)",
    )
    worker_max_cached_workflows: int = Field(
        default=1000,
        ge=0,
        le=100_000,
        description="workflow runs kept in memory between tasks; bounds worker RSS (about 30 KB each) however many "
        "SLA timers are open; an evicted run is replayed from history when its timer fires",
    )
    worker_workflow_pollers: int = Field(
        default=5,
        ge=1,
        le=100,
        description="long polls for workflow tasks (connections to the Temporal frontend)",
    )
    worker_activity_pollers: int = Field(
        default=5,
        ge=1,
        le=100,
        description="long polls for activity tasks (connections to the Temporal frontend)",
    )
    db_pool_size: int = Field(
        default=10,
        ge=1,
        le=200,
        description="PostgreSQL connections per worker (and as many again in overflow): the database must allow "
        "2 × db_pool_size × worker replicas + the API's",
    )

    max_per_hour: int = Field(default=30, ge=1)
    spike_min_count: int = Field(default=10, ge=1)
    spike_factor: float = Field(default=3.0, gt=0)

    outbound_allow: str = Field(
        default="",
        description="comma-separated CIDRs and host names that webhooks, Slack, Teams and the SMS gateway may reach "
        "although private or loopback (and over plain http); `notiflow dev` and tests: 127.0.0.1",
    )
    outbound_timeout_seconds: float = Field(
        default=10.0, gt=0, le=15, description="seconds a webhook, Slack or Teams receiver has to answer"
    )
    webhook_secret_grace: timedelta = Field(
        default=timedelta(hours=24),
        ge=timedelta(0),
        description="after a signing secret is rotated, how long deliveries are also signed with the previous one",
    )

    track_clicks: bool = Field(
        default=True,
        description="wrap every link of EMAIL, SMS, Slack and Teams messages in GET /r/{code} (302 to the stored "
        "link, recording CLICKED); off = raw links",
    )
    track_opens: bool = Field(
        default=False,
        description="add a 1x1 pixel (GET /o/{code}.gif, recording OPENED) to HTML mail; off by default: mail "
        "privacy proxies fetch it for the reader, and an open says who read what when (personal data)",
    )
    machine_open_seconds: float = Field(
        default=2.0,
        ge=0,
        description="an open this soon after sending is a machine's (scanner, proxy prefetch): detail.machine = true",
    )
    engagement_retention_days: int = Field(
        default=400, ge=1, description="engagement events older than this are deleted (Schedule engagement-retention)"
    )

    @field_validator("build_id", mode="before")
    @classmethod
    def _build_id(cls, value: object) -> object:
        """An empty NOTIFLOW_BUILD_ID (compose's ``${NOTIFLOW_BUILD_ID:-}``) means the default."""
        if isinstance(value, str):
            value = value.strip()
            if not value:
                return default_build_id()
            if any(c.isspace() for c in value):
                raise ValueError("must not contain spaces")
        return value

    @field_validator("sms_default_region")
    @classmethod
    def _known_region(cls, value: str) -> str:
        import phonenumbers

        if value.upper() not in phonenumbers.SUPPORTED_REGIONS:
            raise ValueError(f"unknown phone region {value!r} (use an ISO 3166 code such as MG or FR)")
        return value.upper()

    @field_validator("sms_url")
    @classmethod
    def _http_url(cls, value: str | None) -> str | None:
        if value and not value.startswith(("http://", "https://")):
            raise ValueError("must start with http:// or https://")
        return value or None

    @field_validator("vapid_private_key")
    @classmethod
    def _vapid_key(cls, value: SecretStr | None) -> SecretStr | None:
        if value is None or not value.get_secret_value().strip():
            return None
        from notiflow.vapid import private_key

        private_key(value.get_secret_value())  # ValueError names what is wrong, never the key
        return value

    @property
    def vapid_public_key(self) -> str | None:
        """The VAPID public key browsers subscribe with (base64url), or None when Web Push is not configured."""
        if self.vapid_private_key is None:
            return None
        from notiflow.vapid import private_key, public_key_b64

        return public_key_b64(private_key(self.vapid_private_key.get_secret_value()))

    @field_validator("bounce_address")
    @classmethod
    def _bounce_address(cls, value: str | None) -> str | None:
        if not value:
            return None
        local, at, domain = value.strip().partition("@")
        if not at or not local or "." not in domain or "+" in local or any(c.isspace() for c in value):
            raise ValueError("must be a plain address such as bounces@tracker.example (no '+', no name)")
        return f"{local}@{domain.lower()}"

    @field_validator("critical_fallback")
    @classmethod
    def _channels(cls, value: str) -> str:
        names = [c.strip().upper() for c in value.split(",") if c.strip()]
        known = ("EMAIL", "SMS", "PUSH", "IN_APP")
        unknown = [n for n in names if n not in known]
        if unknown:
            raise ValueError(f"unknown channel {unknown[0]!r}: choose among {', '.join(known)}")
        return ",".join(dict.fromkeys(names))

    @property
    def critical_fallback_channels(self) -> tuple[str, ...]:
        """The fallback order of critical notifications, e.g. ('EMAIL', 'SMS', 'IN_APP'); empty = no fallback."""
        return tuple(c for c in self.critical_fallback.split(",") if c and (c != "PUSH" or self.push_configured))

    @property
    def push_configured(self) -> bool:
        """A push provider is configured (Web Push: a VAPID key; FCM: a project and a service account)."""
        return self.vapid_private_key is not None or self.fcm_configured or self.apns_configured

    @property
    def fcm_configured(self) -> bool:
        return bool(self.fcm_project_id) and self.fcm_service_account is not None

    @property
    def apns_configured(self) -> bool:
        return bool(self.apns_team_id and self.apns_key_id and self.apns_topic) and self.apns_private_key is not None

    @field_validator("delivery_deadline", "critical_delivery_deadline", mode="before")
    @classmethod
    def _seconds(cls, value: object) -> object:
        """Environment values are strings: "600" means seconds here, as documented (ISO 8601 "PT10M" works too)."""
        if isinstance(value, str) and value.strip().replace(".", "", 1).isdigit():
            return float(value)
        return value

    @field_validator("database_url")
    @classmethod
    def _asyncpg_url(cls, value: str | None) -> str | None:
        if value and not value.startswith("postgresql+asyncpg://"):
            raise ValueError("must start with postgresql+asyncpg://")
        return value

    @field_validator("codec_key")
    @classmethod
    def _aes_256_key(cls, value: SecretStr | None) -> SecretStr | None:
        if value is None or not value.get_secret_value():  # an empty variable means unset
            return None
        try:
            key = base64.b64decode(value.get_secret_value(), validate=True)
        except binascii.Error:
            key = b""
        if len(key) != 32:
            raise ValueError("must be base64 of 32 random bytes (make one with: openssl rand -base64 32)")
        return value

    @field_validator("payload_keys")
    @classmethod
    def _keyring(cls, value: SecretStr | None) -> SecretStr | None:
        if value is None or not value.get_secret_value().strip():
            return None
        parse_keyring(value.get_secret_value())
        return value

    @property
    def payload_keyring(self) -> list[tuple[str, bytes]]:
        """(key id, 32-byte key) pairs, the encrypting one first: NOTIFLOW_PAYLOAD_KEYS, then NOTIFLOW_CODEC_KEY.

        NOTIFLOW_CODEC_KEY alone is a one-key ring whose id is its hash prefix (what payloads sealed before
        keyrings carry). Empty = payloads stay plaintext.
        """
        ring = parse_keyring(self.payload_keys.get_secret_value()) if self.payload_keys else []
        if self.codec_key is not None:
            key = base64.b64decode(self.codec_key.get_secret_value())
            if all(existing != key for _, existing in ring):
                ring.append((codec_key_id(key), key))
        return ring

    @field_validator("outbound_allow")
    @classmethod
    def _allow_list(cls, value: str) -> str:
        from notiflow.outbound import AllowList

        AllowList.parse(value)
        return value

    @property
    def outbound_allowlist(self):
        """``NOTIFLOW_OUTBOUND_ALLOW`` parsed (``notiflow.outbound.AllowList``)."""
        from notiflow.outbound import allow_list

        return allow_list(self.outbound_allow)

    @property
    def public_api_url(self) -> str:
        return (self.api_url or f"http://localhost:{self.api_port}").rstrip("/")

    @property
    def public_ui_url(self) -> str:
        return (self.ui_url or f"http://localhost:{self.ui_port}").rstrip("/")

    def require_database_url(self) -> str:
        if not self.database_url:
            raise SettingsError(
                "NOTIFLOW_DATABASE_URL is not set (e.g. postgresql+asyncpg://postgres@127.0.0.1:5432/notiflow); "
                "`notiflow dev` starts an embedded PostgreSQL instead"
            )
        return self.database_url

    def require_jwt_secret(self) -> str:
        """For the long-running processes: the built-in development secret would let anyone mint admin tokens."""
        if not self.jwt_secret or self.jwt_secret == DEV_JWT_SECRET:
            raise SettingsError(
                "NOTIFLOW_JWT_SECRET is not set; only `notiflow dev` and `notiflow demo` run on the built-in "
                f"development secret. Set at least {MIN_JWT_SECRET_BYTES} random bytes: openssl rand -base64 48"
            )
        size = len(self.jwt_secret.encode())
        if size < MIN_JWT_SECRET_BYTES:
            raise SettingsError(
                f"NOTIFLOW_JWT_SECRET is {size} bytes; it must be at least {MIN_JWT_SECRET_BYTES} "
                "(make one with: openssl rand -base64 48)"
            )
        return self.jwt_secret


KEY_ID_CHARS = frozenset("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789._-")


def codec_key_id(key: bytes) -> str:
    """The id of a key given without one (NOTIFLOW_CODEC_KEY): a hash prefix, which does not reveal the key."""
    return hashlib.sha256(key).hexdigest()[:8]


def parse_keyring(value: str) -> list[tuple[str, bytes]]:
    """``kid1:base64key,kid2:base64key`` → [(kid, key)], raising ValueError that names a key id, never a key."""
    ring: list[tuple[str, bytes]] = []
    for position, entry in enumerate((e.strip() for e in value.split(",") if e.strip()), start=1):
        kid, sep, encoded = entry.partition(":")
        kid = kid.strip()
        if not sep or not kid or not set(kid) <= KEY_ID_CHARS or len(kid) > 64:
            raise ValueError(
                f"entry {position} must be kid:base64key, the key id made of letters, digits, '.', '_' "
                "or '-' (e.g. 2025-06:<openssl rand -base64 32>)"
            )
        try:
            key = base64.b64decode(encoded.strip(), validate=True)
        except binascii.Error:
            key = b""
        if len(key) != 32:
            raise ValueError(f"key {kid!r} must be base64 of 32 random bytes (make one with: openssl rand -base64 32)")
        if any(kid == known for known, _ in ring):
            raise ValueError(f"key id {kid!r} appears twice")
        ring.append((kid, key))
    if not ring:
        raise ValueError("holds no key")
    return ring


class SettingsError(Exception):
    """A setting is missing or invalid; the message is one line naming it."""


#: Their rejected values stay out of error messages (and so out of logs).
_SECRET_FIELDS = {
    "codec_key",
    "payload_keys",
    "jwt_secret",
    "sms_token",
    "vapid_private_key",
    "fcm_service_account",
    "apns_private_key",
    "smtp_password",
    "smtp_fallback_password",
}


def _env_name(field_name: str) -> str:
    field = Settings.model_fields.get(field_name)
    if field is None:  # already reported under its environment name
        return field_name
    alias = field.validation_alias
    if isinstance(alias, AliasChoices):
        return str(alias.choices[0])
    return f"NOTIFLOW_{field_name.upper()}"


def load_settings(**overrides) -> Settings:
    """Read settings from the environment, raising SettingsError with one readable line."""
    try:
        return Settings(**overrides)
    except ValidationError as exc:
        first = exc.errors()[0]
        field_name = str(first["loc"][0]) if first["loc"] else ""
        name = _env_name(field_name) if field_name else "settings"
        got = "value hidden" if field_name in _SECRET_FIELDS else f"got {first.get('input')!r}"
        raise SettingsError(f"invalid setting {name}: {first['msg']} ({got})") from None


@functools.lru_cache(maxsize=1)
def get_settings() -> Settings:
    return load_settings()
