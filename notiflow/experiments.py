"""Experiments, the pure part: which arm a recipient is in, and the statistics of the results.

**Assignment** (``assign``) is deterministic — no clock, no random state, no process salt — so a person stays
in one arm across events, processes and a replayed workflow: ``sha256("{experiment_id}:{recipient_id}")``,
its first 8 bytes as an unsigned integer modulo 10,000, is the recipient's point in 0–9,999. The arms, in
their stored order, take consecutive ranges of ``weight × 100`` points; the **holdout comes last** (the points
above the arms' ranges), so adding or removing a holdout moves nobody between arms.

**Statistics** (``arm_statistics``): the goal rate with a 95 % Wilson score interval, the probability that the
arm beats control under independent Beta(1 + successes, 1 + failures) posteriors (uniform prior; exact
closed form, Evan Miller's sum, computed in log space), and the two-sided two-proportion z-test p-value
against control (pooled standard error; normal tail by ``math.erfc``).
"""

from __future__ import annotations

import hashlib
import math
from collections.abc import Sequence
from dataclasses import dataclass

from notiflow.templates.render import TemplateSource

#: Points a recipient can fall on: weights are percent, so one percent is 100 points.
POINTS = 10_000
#: The arm name recorded for a recipient held out of an experiment.
HOLDOUT = "holdout"
#: z for a two-sided 95 % interval.
Z95 = 1.959963984540054


def point(experiment_id: str, recipient_id: str) -> int:
    """The recipient's fixed point in 0–9,999 for this experiment."""
    digest = hashlib.sha256(f"{experiment_id}:{recipient_id}".encode()).digest()
    return int.from_bytes(digest[:8], "big") % POINTS


def assign(experiment_id: str, recipient_id: str, arms: Sequence[tuple[str, int]]) -> str:
    """The arm (name) of ``recipient_id``: arms as (name, weight in percent) in their stored order, the holdout
    (100 − the arms' weights) after them; ``HOLDOUT`` for a point beyond the arms."""
    at = point(experiment_id, recipient_id)
    upper = 0
    for name, weight in arms:
        upper += weight * (POINTS // 100)
        if at < upper:
            return name
    return HOLDOUT


def wilson(successes: int, n: int, z: float = Z95) -> tuple[float, float]:
    """The Wilson score interval of a proportion; (0, 1) with no trials."""
    if n == 0:
        return 0.0, 1.0
    p = successes / n
    denominator = 1 + z * z / n
    centre = (p + z * z / (2 * n)) / denominator
    half = z * math.sqrt(p * (1 - p) / n + z * z / (4 * n * n)) / denominator
    return max(0.0, centre - half), min(1.0, centre + half)


def _log_beta(a: float, b: float) -> float:
    return math.lgamma(a) + math.lgamma(b) - math.lgamma(a + b)


def chance_to_beat(successes: int, n: int, control_successes: int, control_n: int) -> float:
    """P(p_arm > p_control) with independent Beta(1 + s, 1 + f) posteriors: the exact sum
    Σ_{i<α_B} B(α_A + i, β_A + β_B) / ((β_B + i) B(1 + i, β_B) B(α_A, β_A)) with B the arm, A control."""
    alpha_b, beta_b = 1 + successes, 1 + n - successes
    alpha_a, beta_a = 1 + control_successes, 1 + control_n - control_successes
    total = 0.0
    for i in range(alpha_b):
        total += math.exp(
            _log_beta(alpha_a + i, beta_a + beta_b)
            - math.log(beta_b + i)
            - _log_beta(1 + i, beta_b)
            - _log_beta(alpha_a, beta_a)
        )
    return min(1.0, max(0.0, total))


def z_test_p_value(successes: int, n: int, control_successes: int, control_n: int) -> float | None:
    """Two-sided p-value of the pooled two-proportion z-test; None when it is undefined (no trials, or
    every trial a success or every one a failure on both sides)."""
    if n == 0 or control_n == 0:
        return None
    pooled = (successes + control_successes) / (n + control_n)
    se = math.sqrt(pooled * (1 - pooled) * (1 / n + 1 / control_n))
    if se == 0:
        return None
    z = (successes / n - control_successes / control_n) / se
    return math.erfc(abs(z) / math.sqrt(2))


@dataclass(frozen=True)
class ArmStatistics:
    rate: float | None
    interval: tuple[float, float]
    chance_to_beat_control: float | None
    p_value: float | None


def arm_statistics(successes: int, n: int, control: tuple[int, int] | None) -> ArmStatistics:
    """An arm's goal rate, Wilson interval, and (for a non-control arm) its comparison with control
    (``control`` = control's successes and trials; None for the control arm itself)."""
    return ArmStatistics(
        rate=successes / n if n else None,
        interval=wilson(successes, n),
        chance_to_beat_control=chance_to_beat(successes, n, *control) if control is not None else None,
        p_value=z_test_p_value(successes, n, *control) if control is not None else None,
    )


@dataclass(frozen=True)
class RunningArm:
    name: str
    weight: int
    is_control: bool
    #: the arm's template version, rendered instead of the active one
    template: TemplateSource


@dataclass(frozen=True)
class RunningExperiment:
    """A RUNNING experiment as planning uses it (``activities/experiments/queries.py : running_experiments``)."""

    id: str
    name: str
    notification_type: str
    channel: str
    locale: str
    holdout_weight: int
    arms: tuple[RunningArm, ...]

    def arm_of(self, recipient_id: str) -> RunningArm | None:
        """The recipient's arm; None when held out."""
        name = assign(self.id, recipient_id, [(a.name, a.weight) for a in self.arms])
        return next((a for a in self.arms if a.name == name), None)
