"""The demo users `notiflow dev` and `notiflow demo` put in the directory (idempotent)."""

from __future__ import annotations

from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from notiflow.contracts import User
from notiflow.directory import upsert_users

DEMO_USERS = [
    User(
        id="u-admin",
        name="Hery Rasoa",
        email="hery.admin@example.mg",
        locale="fr",
        roles=["admin"],
        is_on_call=True,
        timezone="Indian/Antananarivo",
    ),
    User(id="u-lead", name="Miora Rabe", email="miora.lead@example.mg", locale="en", roles=["admin"]),
    User(id="u-agent", name="Rakoto Andry", email="rakoto@example.mg", locale="fr", roles=["staff"]),
    User(id="u-clerk", name="Lalao Rina", email="lalao@example.mg", locale="en", roles=["staff"]),
]


async def seed_demo_users(sessions: async_sessionmaker[AsyncSession]) -> list[User]:
    async with sessions.begin() as session:
        await upsert_users(session, DEMO_USERS)
    return DEMO_USERS


#: The demo user who gets SMS: on call, so every critical notification reaches them (opted in below).
SMS_DEMO_USER = "u-admin"
SMS_DEMO_PHONE = "+261341234567"
#: Critical types the demo user chose SMS for (`PUT /preferences` does the same).
SMS_DEMO_TYPES = ("AUTO_ISSUE_DETECTED", "SYSTEM_ERROR_SPIKE")
#: The demo user whose devices the local push receiver plays (a browser whose keys it holds, an Android, an iPhone).
PUSH_DEMO_USER = "u-agent"
PUSH_DEMO_TYPES = ("ISSUE_ASSIGNED",)
PUSH_DEMO_FCM_TOKEN = "dev-fcm-token-u-agent"
PUSH_DEMO_APNS_TOKEN = "de" * 32
#: The subscriptions `notiflow dev` points at its local receiver: (name, kind, path, notification types).
DEMO_HOOKS = (
    (
        "demo webhook (local catcher)",
        "WEBHOOK",
        "/webhook",
        ["AUTO_ISSUE_DETECTED", "HIGH_PRIORITY_ISSUE", "ISSUE_RESOLVED"],
    ),
    ("demo Slack (local catcher)", "SLACK", "/slack", ["AUTO_ISSUE_DETECTED", "ISSUE_OVERDUE"]),
    ("demo Teams (local catcher)", "TEAMS", "/teams", ["AUTO_ISSUE_DETECTED"]),
)


async def seed_demo_sms(sessions: async_sessionmaker[AsyncSession]) -> str:
    """A phone for the demo admin and their SMS choice for critical types (only with the local SMS catcher)."""
    from sqlalchemy import update
    from sqlalchemy.dialects.postgresql import insert

    from notiflow.models import NotificationPreferenceRow, UserRow

    async with sessions.begin() as session:
        await session.execute(update(UserRow).where(UserRow.id == SMS_DEMO_USER).values(phone=SMS_DEMO_PHONE))
        for notification_type in SMS_DEMO_TYPES:
            await session.execute(
                insert(NotificationPreferenceRow)
                .values(
                    user_id=SMS_DEMO_USER, notification_type=notification_type, delivery_method="SMS", is_enabled=True
                )
                .on_conflict_do_update(
                    index_elements=["user_id", "notification_type", "delivery_method"], set_={"is_enabled": True}
                )
            )
    return f"{SMS_DEMO_USER} ({SMS_DEMO_PHONE}) for {', '.join(SMS_DEMO_TYPES)}"


async def seed_demo_hooks(sessions: async_sessionmaker[AsyncSession], base_url: str) -> list[str]:
    """The demo's webhook, Slack and Teams subscriptions, pointed at ``base_url`` (updated when it moves)."""
    from sqlalchemy import select

    from notiflow.models import WebhookSubscriptionRow
    from programs.api.webhooks import new_secret

    async with sessions.begin() as session:
        for name, kind, path, types in DEMO_HOOKS:
            row = (
                (await session.execute(select(WebhookSubscriptionRow).where(WebhookSubscriptionRow.name == name)))
                .scalars()
                .first()
            )
            if row is None:
                row = WebhookSubscriptionRow(
                    name=name, channel=kind, secret=new_secret() if kind == "WEBHOOK" else None
                )
                session.add(row)
            row.url, row.notification_types, row.is_active, row.deactivated_reason = base_url + path, types, True, None
    return [f"{kind} {base_url}{path}" for _, kind, path, _ in DEMO_HOOKS]


#: The experiment `notiflow dev` runs on the demo, so the Experiments screen has something to show.
DEMO_EXPERIMENT = "Demo: a shorter subject for new issues"
DEMO_VARIANT_SUBJECT = "New issue {{ issue.id }}: {{ issue.title }}"


async def seed_demo_experiment(sessions: async_sessionmaker[AsyncSession]) -> str:
    """One RUNNING experiment on ISSUE_CREATED × EMAIL × en with two arms: the active template (A, control) and a
    version with a shorter subject (B, added inactive). Idempotent: kept as it is once it exists."""
    from sqlalchemy import func, select

    from notiflow.models import ExperimentArmRow, ExperimentRow, NotificationTemplateRow

    template = NotificationTemplateRow
    async with sessions.begin() as session:
        existing = await session.scalar(select(ExperimentRow).where(ExperimentRow.name == DEMO_EXPERIMENT))
        if existing is not None:
            return f"{DEMO_EXPERIMENT} ({existing.state})"
        active = await session.scalar(
            select(template).where(template.name == "ISSUE_CREATED.EMAIL.en", template.is_active)
        )
        if active is None:
            return "no active ISSUE_CREATED.EMAIL.en template: no demo experiment"
        latest = await session.scalar(select(func.max(template.version)).where(template.name == active.name))
        variant = template(
            **{c: getattr(active, c) for c in ("name", "display_name", "description", "template_type")},
            notification_type=active.notification_type,
            locale=active.locale,
            subject_template=DEMO_VARIANT_SUBJECT,
            body_template=active.body_template,
            html_template=active.html_template,
            version=(latest or 0) + 1,
            is_active=False,
            created_by="notiflow dev",
        )
        session.add(variant)
        await session.flush()
        running = await session.scalar(
            select(ExperimentRow.id).where(
                ExperimentRow.state == "RUNNING",
                ExperimentRow.notification_type == "ISSUE_CREATED",
                ExperimentRow.channel == "EMAIL",
                ExperimentRow.locale == "en",
            )
        )
        experiment = ExperimentRow(
            name=DEMO_EXPERIMENT,
            notification_type="ISSUE_CREATED",
            channel="EMAIL",
            locale="en",
            state="DRAFT" if running else "RUNNING",
            goal="CLICKED",
            window_hours=72,
            min_sample_per_arm=20,
            holdout_weight=0,
            created_by="notiflow dev",
            started_at=None if running else func.now(),
            started_by=None if running else "notiflow dev",
        )
        session.add(experiment)
        await session.flush()
        for position, (name, version, control) in enumerate((("A", active, True), ("B", variant, False))):
            session.add(
                ExperimentArmRow(
                    experiment_id=experiment.id,
                    name=name,
                    template_id=version.id,
                    weight=50,
                    is_control=control,
                    position=position,
                )
            )
        return f"{DEMO_EXPERIMENT} ({experiment.state}, arms A v{active.version} / B v{variant.version})"


async def seed_demo_push(sessions: async_sessionmaker[AsyncSession], web: dict | None, fcm: bool, apns: bool) -> str:
    """The demo agent's devices at the local push receiver and their PUSH choice for assignments. The Web Push
    subscription (``web``: ``PushSubscription.toJSON()``) moves with the receiver's port: older ones go."""
    from sqlalchemy import delete
    from sqlalchemy.dialects.postgresql import insert

    from notiflow.models import NotificationPreferenceRow, PushSubscriptionRow

    devices: list[tuple[str, str, str | None, str | None]] = []
    if web is not None:
        devices.append(("WEB", web["endpoint"], web["keys"]["p256dh"], web["keys"]["auth"]))
    if fcm:
        devices.append(("FCM", PUSH_DEMO_FCM_TOKEN, None, None))
    if apns:
        devices.append(("APNS", PUSH_DEMO_APNS_TOKEN, None, None))
    async with sessions.begin() as session:
        if web is not None:
            path = "/wpush/" + web["endpoint"].rsplit("/wpush/", 1)[-1]
            await session.execute(
                delete(PushSubscriptionRow).where(
                    PushSubscriptionRow.user_id == PUSH_DEMO_USER,
                    PushSubscriptionRow.endpoint.like(f"http://127.0.0.1:%{path}"),
                    PushSubscriptionRow.endpoint != web["endpoint"],
                )
            )
        for kind, endpoint, p256dh, auth in devices:
            await session.execute(
                insert(PushSubscriptionRow)
                .values(
                    user_id=PUSH_DEMO_USER,
                    kind=kind,
                    endpoint=endpoint,
                    p256dh=p256dh,
                    auth=auth,
                    user_agent="notiflow dev (local push receiver)",
                )
                .on_conflict_do_update(index_elements=["user_id", "endpoint"], set_={"p256dh": p256dh, "auth": auth})
            )
        for notification_type in PUSH_DEMO_TYPES:
            await session.execute(
                insert(NotificationPreferenceRow)
                .values(
                    user_id=PUSH_DEMO_USER,
                    notification_type=notification_type,
                    delivery_method="PUSH",
                    is_enabled=True,
                )
                .on_conflict_do_update(
                    index_elements=["user_id", "notification_type", "delivery_method"], set_={"is_enabled": True}
                )
            )
    kinds = ", ".join(kind for kind, *_ in devices)
    return f"{PUSH_DEMO_USER}: {kinds} at the local push receiver, for {', '.join(PUSH_DEMO_TYPES)}"
