"""SQL of the experiments feature that planning needs: the RUNNING experiments with their arms' template versions."""

from __future__ import annotations

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from notiflow.experiments import RunningArm, RunningExperiment
from notiflow.models import ExperimentArmRow, ExperimentRow, NotificationTemplateRow
from notiflow.templates.render import template_name
from notiflow.templates.store import template_source


async def running_experiments(session: AsyncSession) -> dict[str, RunningExperiment]:
    """Every RUNNING experiment (one query, in the plan's transaction), by the template name it covers
    (``{type}.{channel}.{locale}``)."""
    e, a, t = ExperimentRow, ExperimentArmRow, NotificationTemplateRow
    rows = (
        await session.execute(
            select(e, a, t)
            .join(a, a.experiment_id == e.id)
            .join(t, t.id == a.template_id)
            .where(e.state == "RUNNING")
            .order_by(e.id, a.position)
        )
    ).all()
    found: dict[str, RunningExperiment] = {}
    for experiment, arm, template in rows:
        key = template_name(experiment.notification_type, experiment.channel, experiment.locale)
        current = found.get(key) or RunningExperiment(
            id=str(experiment.id),
            name=experiment.name,
            notification_type=experiment.notification_type,
            channel=experiment.channel,
            locale=experiment.locale,
            holdout_weight=experiment.holdout_weight,
            arms=(),
        )
        source = template_source(template)
        found[key] = RunningExperiment(
            **{**current.__dict__, "arms": (*current.arms, RunningArm(arm.name, arm.weight, arm.is_control, source))}
        )
    return found
