"""The results' statistics against values computed independently here (closed forms, a numerical integral)."""

from __future__ import annotations

import math
from statistics import NormalDist

import pytest

from notiflow.experiments import arm_statistics, chance_to_beat, wilson, z_test_p_value

#: (successes, trials) of an arm and of control
CASES = [
    ((60, 400), (40, 400)),
    ((12, 100), (15, 100)),
    ((250, 1000), (230, 1000)),
    ((0, 50), (3, 50)),
    ((9, 9), (5, 10)),
]


def wilson_by_quadratic(s: int, n: int, z: float) -> tuple[float, float]:
    """The interval's ends are the roots of (p̂ − p)² = z² p(1 − p)/n in p."""
    phat = s / n
    a = 1 + z * z / n
    b = -(2 * phat + z * z / n)
    c = phat * phat
    root = math.sqrt(b * b - 4 * a * c)
    return (-b - root) / (2 * a), (-b + root) / (2 * a)


def beta_pdf(x: float, a: int, b: int) -> float:
    if x <= 0 or x >= 1:
        return 0.0
    return math.exp(
        (a - 1) * math.log(x) + (b - 1) * math.log1p(-x) - (math.lgamma(a) + math.lgamma(b) - math.lgamma(a + b))
    )


def chance_by_integral(s: int, n: int, cs: int, cn: int, steps: int = 40_000) -> float:
    """P(X > Y), X ~ Beta(1+s, 1+n−s), Y ~ Beta(1+cs, 1+cn−cs): ∫ f_X(x) F_Y(x) dx by the midpoint rule."""
    h = 1 / steps
    cdf_y, total = 0.0, 0.0
    for i in range(steps):
        x = (i + 0.5) * h
        fy = beta_pdf(x, 1 + cs, 1 + cn - cs)
        total += beta_pdf(x, 1 + s, 1 + n - s) * (cdf_y + fy * h / 2) * h
        cdf_y += fy * h
    return total


def p_value_by_normal_dist(s: int, n: int, cs: int, cn: int) -> float:
    pooled = (s + cs) / (n + cn)
    z = (s / n - cs / cn) / math.sqrt(pooled * (1 - pooled) * (1 / n + 1 / cn))
    return 2 * (1 - NormalDist().cdf(abs(z)))


@pytest.mark.parametrize(("arm", "control"), CASES)
def test_interval_p_value_and_chance_to_beat_control_to_three_decimals(arm, control):
    z = NormalDist().inv_cdf(0.975)
    stats = arm_statistics(*arm, control)
    low, high = wilson_by_quadratic(*arm, z)
    assert stats.interval[0] == pytest.approx(max(low, 0.0), abs=5e-4)
    assert stats.interval[1] == pytest.approx(min(high, 1.0), abs=5e-4)
    assert round(stats.chance_to_beat_control, 3) == pytest.approx(
        round(chance_by_integral(*arm, *control), 3), abs=1e-3
    )
    assert stats.p_value == pytest.approx(p_value_by_normal_dist(*arm, *control), abs=5e-4)


def test_known_values():
    # 60/400 vs 40/400: pooled 0.125, z = 2.138, p = 0.0325; Wilson of 60/400 = (0.1183, 0.1883)
    assert z_test_p_value(60, 400, 40, 400) == pytest.approx(0.0325, abs=1e-4)
    assert wilson(60, 400) == pytest.approx((0.1183, 0.1883), abs=2e-4)
    assert chance_to_beat(5, 10, 5, 10) == pytest.approx(0.5, abs=1e-9)  # same data: a coin toss
    assert chance_to_beat(0, 0, 0, 0) == pytest.approx(0.5, abs=1e-9)


def test_undefined_cases():
    assert z_test_p_value(0, 0, 3, 10) is None
    assert z_test_p_value(0, 10, 0, 10) is None
    assert wilson(0, 0) == (0.0, 1.0)
    assert arm_statistics(3, 10, None).chance_to_beat_control is None
