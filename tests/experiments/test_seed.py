"""`notiflow dev` seeds one running experiment with two arms on the demo (idempotent)."""

from __future__ import annotations

from sqlalchemy import select

from notiflow.models import ExperimentArmRow, ExperimentRow, NotificationTemplateRow
from programs.dev.seed import DEMO_EXPERIMENT, seed_demo_experiment


async def test_the_demo_experiment_is_running_with_two_arms(db):
    try:
        first = await seed_demo_experiment(db)
        assert "RUNNING" in first and await seed_demo_experiment(db) == f"{DEMO_EXPERIMENT} (RUNNING)"
        async with db() as session:
            experiment = await session.scalar(select(ExperimentRow))
            arms = list(await session.scalars(select(ExperimentArmRow).order_by(ExperimentArmRow.position)))
        assert experiment.state == "RUNNING" and [(a.name, a.weight, a.is_control) for a in arms] == [
            ("A", 50, True),
            ("B", 50, False),
        ]
    finally:
        async with db.begin() as session:
            variants = select(ExperimentArmRow.template_id).where(ExperimentArmRow.name == "B")
            ids = list(await session.scalars(variants))
            await session.execute(ExperimentRow.__table__.delete())
            await session.execute(NotificationTemplateRow.__table__.delete().where(NotificationTemplateRow.id.in_(ids)))
