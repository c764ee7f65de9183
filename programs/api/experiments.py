"""Experiments (admin): A/B variants of one template — (notification type, channel, locale) — judged on reads or
clicks, promoted in one call.

An experiment has 2–5 arms, each a version of that template (``GET …/templates/{id}/versions``) with a weight
in percent, one of them the control; an optional holdout (non-critical types only) receives nothing. Arm
weights plus the holdout sum to 100. ``DRAFT`` (editable) → ``start`` → ``RUNNING`` (at most one per type,
channel and locale; planning renders each recipient's arm, ``notiflow/experiments.py : assign``) → ``stop`` →
``STOPPED``, or ``promote`` → ``PROMOTED`` (the winning arm's version becomes the active template through the
templates' activate path). A running experiment's arms and weights never change: stop it and start a new one.
Every change is audited (``experiment.create`` / ``update`` / ``start`` / ``stop`` / ``promote``).
"""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Annotated, Any, Literal

from fastapi import APIRouter, HTTPException
from pydantic import BaseModel, Field, ValidationInfo, field_validator
from sqlalchemy import func, select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession

from notiflow.audit import record_audit
from notiflow.contracts import CRITICAL_TYPES, Channel, NotificationType
from notiflow.experiments import HOLDOUT, arm_statistics
from notiflow.models import ExperimentArmRow, ExperimentRow, NotificationTemplateRow
from notiflow.tokens import Principal
from programs.api.auth import ROLE_ERRORS, Admin
from programs.api.deps import Session
from programs.api.errors import VALIDATION_ERRORS
from programs.api.experiment_queries import ArmCounts, arm_counts
from programs.api.schemas import _Request
from programs.api.templates import activate_version

router = APIRouter(
    prefix="/api/v1/notifications/experiments",
    tags=["experiments"],
    responses={**ROLE_ERRORS, **VALIDATION_ERRORS},
)

State = Literal["DRAFT", "RUNNING", "STOPPED", "PROMOTED"]
Goal = Literal["READ", "CLICKED"]
ArmName = Annotated[str, Field(min_length=1, max_length=40, pattern=r"^[A-Za-z0-9][A-Za-z0-9 _.-]*$")]


class ArmIn(_Request):
    name: ArmName = Field(examples=["A"])
    template_id: uuid.UUID = Field(description="a version of the experiment's template (the templates API's id)")
    weight: int = Field(ge=1, le=100, description="percent of recipients", examples=[50])
    is_control: bool = Field(default=False, description="the arm the others are compared with (exactly one)")


class ExperimentIn(_Request):
    name: str = Field(min_length=1, max_length=120, examples=["Shorter subject for new issues"])
    notification_type: NotificationType
    channel: Channel
    locale: str = Field(default="en", min_length=2, max_length=16)
    goal: Goal = Field(default="CLICKED", description="what counts as a success: READ or CLICKED")
    window_hours: int = Field(default=72, ge=1, le=24 * 30, description="the goal counts within this of sending")
    min_sample_per_arm: int = Field(default=100, ge=1, le=1_000_000, description="delivered rows per arm")
    holdout_weight: int = Field(default=0, ge=0, le=50, description="percent held out (receive nothing)")
    arms: list[ArmIn] = Field(min_length=2, max_length=5)

    @field_validator("arms")
    @classmethod
    def _arms(cls, arms: list[ArmIn], info: ValidationInfo) -> list[ArmIn]:
        names = [a.name for a in arms]
        if len(set(names)) != len(names) or HOLDOUT in names:
            raise ValueError(f"arm names must be distinct and not {HOLDOUT!r}: {names}")
        if sum(a.is_control for a in arms) != 1:
            raise ValueError("exactly one arm must be the control (is_control: true)")
        holdout = info.data.get("holdout_weight", 0) or 0
        total = sum(a.weight for a in arms) + holdout
        if total != 100:
            weights = " + ".join(str(a.weight) for a in arms)
            raise ValueError(f"the arms' weights ({weights}) plus holdout_weight ({holdout}) sum to {total}, not 100")
        return arms


class PromoteIn(_Request):
    arm: ArmName = Field(description="the winning arm's name", examples=["B"])


class ArmOut(BaseModel):
    name: str
    template_id: uuid.UUID
    template_version: int
    weight: int
    is_control: bool


class ExperimentOut(BaseModel):
    id: uuid.UUID
    name: str
    notification_type: str
    channel: str
    locale: str
    state: State
    goal: Goal
    window_hours: int
    min_sample_per_arm: int
    holdout_weight: int
    arms: list[ArmOut]
    created_at: datetime
    created_by: str | None
    started_at: datetime | None
    started_by: str | None
    stopped_at: datetime | None
    stopped_by: str | None
    promoted_at: datetime | None
    promoted_by: str | None
    promoted_arm: str | None


class ArmResult(BaseModel):
    name: str
    is_control: bool
    weight: int
    sent: int = Field(description="rows planned in this arm")
    delivered: int = Field(description="rows SENT: the sample")
    seen: int
    opened: int = Field(description="human opens (machine opens excluded)")
    read: int
    clicked: int
    goal: int = Field(description="delivered rows with the goal event within window_hours of sending")
    goal_rate: float | None
    interval: tuple[float, float] | None = Field(description="95 % Wilson interval of goal_rate")
    chance_to_beat_control: float | None = Field(description="P(rate > control's), Beta(1+s, 1+f) posteriors")
    p_value: float | None = Field(description="two-sided two-proportion z-test against control")


class ExperimentResults(BaseModel):
    experiment_id: uuid.UUID
    state: State
    goal: Goal
    window_hours: int
    min_sample_per_arm: int
    enough_data: bool
    verdict: str = Field(description='"not enough data: …" until every arm has min_sample_per_arm delivered rows')
    held_out: int = Field(description="recipients held out (nothing sent)")
    arms: list[ArmResult]


async def _load(session: AsyncSession, experiment_id: uuid.UUID) -> tuple[ExperimentRow, list[Any]]:
    experiment = await session.get(ExperimentRow, experiment_id)
    if experiment is None:
        raise HTTPException(404, f"no experiment {experiment_id}; GET /api/v1/notifications/experiments lists them")
    arms = list(
        (
            await session.execute(
                select(ExperimentArmRow, NotificationTemplateRow.version)
                .join(NotificationTemplateRow, NotificationTemplateRow.id == ExperimentArmRow.template_id)
                .where(ExperimentArmRow.experiment_id == experiment_id)
                .order_by(ExperimentArmRow.position)
            )
        ).all()
    )
    return experiment, arms


def _out(experiment: ExperimentRow, arms: list[Any]) -> ExperimentOut:
    return ExperimentOut(
        **{c: getattr(experiment, c) for c in ExperimentOut.model_fields if c != "arms"},
        arms=[
            ArmOut(name=a.name, template_id=a.template_id, template_version=v, weight=a.weight, is_control=a.is_control)
            for a, v in arms
        ],
    )


def _values(body: ExperimentIn) -> dict[str, Any]:
    return body.model_dump(mode="json")


async def _validated(session: AsyncSession, body: ExperimentIn) -> None:
    """The checks that need the database: each arm a version of the experiment's template; holdout only for
    non-critical types. A 422 naming the field."""
    if body.holdout_weight and body.notification_type in CRITICAL_TYPES:
        raise HTTPException(
            422, f"holdout_weight: {body.notification_type} is critical; critical notifications are never held out"
        )
    ids = [a.template_id for a in body.arms]
    found = {
        t.id: t
        for t in await session.scalars(select(NotificationTemplateRow).where(NotificationTemplateRow.id.in_(ids)))
    }
    target = (str(body.notification_type), str(body.channel), body.locale)
    for i, arm in enumerate(body.arms):
        row = found.get(arm.template_id)
        if row is None:
            raise HTTPException(422, f"arms[{i}].template_id: no template version {arm.template_id}")
        if (row.notification_type, row.template_type, row.locale) != target:
            raise HTTPException(
                422,
                f"arms[{i}].template_id: version {row.version} of {row.name} is not a template of {'.'.join(target)}",
            )


async def _replace_arms(session: AsyncSession, experiment_id: uuid.UUID, body: ExperimentIn) -> None:
    await session.execute(ExperimentArmRow.__table__.delete().where(ExperimentArmRow.experiment_id == experiment_id))  # type: ignore[attr-defined]
    for position, arm in enumerate(body.arms):
        session.add(
            ExperimentArmRow(
                experiment_id=experiment_id,
                name=arm.name,
                template_id=arm.template_id,
                weight=arm.weight,
                is_control=arm.is_control,
                position=position,
            )
        )


async def _commit(
    session: AsyncSession, admin: Principal, action: str, experiment: ExperimentRow, details: dict[str, Any]
) -> ExperimentOut:
    """Commit the change with its audit row; a second running experiment on the same target is a 409."""
    try:
        await session.flush()
        await record_audit(session, actor=admin.user_id, action=action, target=str(experiment.id), details=details)
        await session.commit()
    except IntegrityError:
        await session.rollback()
        raise HTTPException(
            409,
            "another experiment on this notification type, channel and locale is running (or the template was "
            "changed at the same moment); stop it first",
        ) from None
    await session.refresh(experiment)
    return _out(*await _load(session, experiment.id))


def _refuse_unless(experiment: ExperimentRow, *states: str, doing: str) -> None:
    if experiment.state not in states:
        hint = (
            " (a running experiment cannot change: stop it and start a new one)"
            if experiment.state == "RUNNING"
            else ""
        )
        raise HTTPException(409, f"cannot {doing} experiment {experiment.name}: it is {experiment.state}{hint}")


@router.get("", response_model=list[ExperimentOut], summary="Every experiment, newest first")
async def list_experiments(_admin: Admin, session: Session, state: State | None = None) -> list[ExperimentOut]:
    query = select(ExperimentRow).order_by(ExperimentRow.created_at.desc())
    if state:
        query = query.where(ExperimentRow.state == state)
    return [_out(*await _load(session, e.id)) for e in list(await session.scalars(query))]


@router.post("", status_code=201, response_model=ExperimentOut, summary="Create an experiment (DRAFT)")
async def create_experiment(body: ExperimentIn, admin: Admin, session: Session) -> ExperimentOut:
    await _validated(session, body)
    values = _values(body)
    values.pop("arms")
    experiment = ExperimentRow(id=uuid.uuid4(), state="DRAFT", created_by=admin.user_id, **values)
    session.add(experiment)
    await session.flush()
    await _replace_arms(session, experiment.id, body)
    return await _commit(session, admin, "experiment.create", experiment, {"after": _values(body)})


@router.get("/{experiment_id}", response_model=ExperimentOut, summary="One experiment")
async def get_experiment(experiment_id: uuid.UUID, _admin: Admin, session: Session) -> ExperimentOut:
    return _out(*await _load(session, experiment_id))


@router.put("/{experiment_id}", response_model=ExperimentOut, summary="Replace a DRAFT experiment")
async def update_experiment(
    experiment_id: uuid.UUID, body: ExperimentIn, admin: Admin, session: Session
) -> ExperimentOut:
    experiment, arms = await _load(session, experiment_id)
    _refuse_unless(experiment, "DRAFT", doing="edit")
    before = _out(experiment, arms).model_dump(mode="json", include={"name", "arms", "holdout_weight", "goal"})
    await _validated(session, body)
    values = _values(body)
    values.pop("arms")
    for column, value in values.items():
        setattr(experiment, column, value)
    await _replace_arms(session, experiment.id, body)
    return await _commit(session, admin, "experiment.update", experiment, {"before": before, "after": _values(body)})


async def _transition(
    session: AsyncSession, admin: Principal, experiment_id: uuid.UUID, to: str, allowed: tuple[str, ...], doing: str
) -> tuple[ExperimentRow, list[Any]]:
    experiment, arms = await _load(session, experiment_id)
    _refuse_unless(experiment, *allowed, doing=doing)
    experiment.state = to
    stamp = {"RUNNING": "started", "STOPPED": "stopped", "PROMOTED": "promoted"}[to]
    setattr(experiment, f"{stamp}_at", func.now())
    setattr(experiment, f"{stamp}_by", admin.user_id)
    return experiment, arms


@router.post("/{experiment_id}/start", response_model=ExperimentOut, summary="Start a DRAFT experiment")
async def start_experiment(experiment_id: uuid.UUID, admin: Admin, session: Session) -> ExperimentOut:
    experiment, _ = await _load(session, experiment_id)
    _refuse_unless(experiment, "DRAFT", doing="start")
    running = await session.scalar(
        select(ExperimentRow.name).where(
            ExperimentRow.state == "RUNNING",
            ExperimentRow.id != experiment.id,
            ExperimentRow.notification_type == experiment.notification_type,
            ExperimentRow.channel == experiment.channel,
            ExperimentRow.locale == experiment.locale,
        )
    )
    if running is not None:
        raise HTTPException(
            409,
            f"experiment {running} is already running on {experiment.notification_type} {experiment.channel} "
            f"{experiment.locale}; stop it first",
        )
    await _transition(session, admin, experiment_id, "RUNNING", ("DRAFT",), "start")
    return await _commit(
        session, admin, "experiment.start", experiment, {"state": {"before": "DRAFT", "after": "RUNNING"}}
    )


@router.post("/{experiment_id}/stop", response_model=ExperimentOut, summary="Stop a running experiment")
async def stop_experiment(experiment_id: uuid.UUID, admin: Admin, session: Session) -> ExperimentOut:
    experiment, _ = await _transition(session, admin, experiment_id, "STOPPED", ("RUNNING",), "stop")
    return await _commit(
        session, admin, "experiment.stop", experiment, {"state": {"before": "RUNNING", "after": "STOPPED"}}
    )


@router.post(
    "/{experiment_id}/promote",
    response_model=ExperimentOut,
    summary="Make the winning arm's version the active template and end the experiment",
    description="Through the templates' activate path (validated again, audited as template.activate); the "
    "experiment becomes PROMOTED. Workers pick the template up within 5 s.",
)
async def promote_experiment(
    experiment_id: uuid.UUID, body: PromoteIn, admin: Admin, session: Session
) -> ExperimentOut:
    before = (await _load(session, experiment_id))[0].state
    experiment, arms = await _transition(session, admin, experiment_id, "PROMOTED", ("RUNNING", "STOPPED"), "promote")
    winner = next((a for a, _ in arms if a.name == body.arm), None)
    if winner is None:
        raise HTTPException(
            422, f"arm: experiment {experiment.name} has no arm {body.arm!r} ({', '.join(a.name for a, _ in arms)})"
        )
    experiment.promoted_arm = winner.name
    template = await session.get(NotificationTemplateRow, winner.template_id)
    assert template is not None  # a foreign key
    if not template.is_active:
        await activate_version(session, template, admin, {"experiment": str(experiment.id), "arm": winner.name})
    return await _commit(
        session,
        admin,
        "experiment.promote",
        experiment,
        {
            "state": {"before": before, "after": "PROMOTED"},
            "arm": winner.name,
            "template_id": str(template.id),
            "version": template.version,
        },
    )


@router.get("/{experiment_id}/results", response_model=ExperimentResults, summary="Per-arm counts and statistics")
async def experiment_results(experiment_id: uuid.UUID, _admin: Admin, session: Session) -> ExperimentResults:
    experiment, arms = await _load(session, experiment_id)
    counts = await arm_counts(session, experiment.id, experiment.goal, experiment.window_hours)
    control = next(a for a, _ in arms if a.is_control)
    control_counts = counts.get(control.name, ArmCounts())
    short = [
        f"{a.name} has {counts.get(a.name, ArmCounts()).delivered} of {experiment.min_sample_per_arm}"
        for a, _ in arms
        if counts.get(a.name, ArmCounts()).delivered < experiment.min_sample_per_arm
    ]
    enough = not short
    results = []
    for arm, _ in arms:
        c = counts.get(arm.name, ArmCounts())
        stats = arm_statistics(
            c.goal, c.delivered, None if arm.is_control else (control_counts.goal, control_counts.delivered)
        )
        results.append(
            ArmResult(
                name=arm.name,
                is_control=arm.is_control,
                weight=arm.weight,
                sent=c.sent,
                delivered=c.delivered,
                seen=c.seen,
                opened=c.opened,
                read=c.read,
                clicked=c.clicked,
                goal=c.goal,
                goal_rate=stats.rate,
                interval=stats.interval if enough else None,
                chance_to_beat_control=stats.chance_to_beat_control if enough else None,
                p_value=stats.p_value if enough else None,
            )
        )
    if not enough:
        verdict = "not enough data: " + "; ".join(short) + " delivered"
    else:
        verdict = _verdict(results)
    return ExperimentResults(
        experiment_id=experiment.id,
        state=experiment.state,  # type: ignore[arg-type]
        goal=experiment.goal,  # type: ignore[arg-type]
        window_hours=experiment.window_hours,
        min_sample_per_arm=experiment.min_sample_per_arm,
        enough_data=enough,
        verdict=verdict,
        held_out=counts.get(HOLDOUT, ArmCounts()).sent,
        arms=results,
    )


def _verdict(arms: list[ArmResult]) -> str:
    """Significant at p < 0.05 only; otherwise say so."""
    better = [a for a in arms if a.p_value is not None and a.p_value < 0.05 and (a.chance_to_beat_control or 0) > 0.5]
    worse = [a for a in arms if a.p_value is not None and a.p_value < 0.05 and (a.chance_to_beat_control or 0) < 0.5]
    if better:
        best = max(better, key=lambda a: a.goal_rate or 0)
        return f"arm {best.name} beats control (p = {best.p_value:.3f})"
    if worse and len(worse) == len(arms) - 1:
        return "control beats every other arm (p < 0.05)"
    return "no significant difference from control yet (p ≥ 0.05)"
