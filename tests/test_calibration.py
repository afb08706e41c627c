"""Calibration: estimates converge to billed usage; the factor stays positive and bounded."""

from __future__ import annotations

import random
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from ctxbudget.errors import ConfigError
from ctxbudget.session.items import Component, Item, TextPart
from ctxbudget.tokens import Calibrator, EstimatingTokenizer, TiktokenTokenizer, TokenCounter


def true_count(raw: int, fixed: int, *, bias: float, rng: random.Random) -> int:
    """A hidden tokenizer: a biased, noisy function of the proxy count."""
    return round(raw * bias * (1 + rng.uniform(-0.01, 0.01))) + fixed


@pytest.mark.parametrize(("initial", "bias"), [(1.3, 1.37), (1.0, 1.6), (1.3, 0.85)])
def test_estimates_converge_within_two_percent(initial: float, bias: float) -> None:
    rng = random.Random(7)
    cal = Calibrator(initial)
    for _ in range(30):
        raw = rng.randint(500, 60_000)
        cal = cal.observe(raw, true_count(raw, 350, bias=bias, rng=rng), fixed_tokens=350)
    assert cal.observations == 30
    assert cal.rejected == 0
    assert cal.factor == pytest.approx(bias, rel=0.01)
    for _ in range(20):
        raw = rng.randint(1_000, 100_000)
        truth = true_count(raw, 350, bias=bias, rng=rng)
        assert cal.estimate(raw, 350) == pytest.approx(truth, rel=0.02)


def test_one_odd_call_does_not_swing_a_settled_factor() -> None:
    cal = Calibrator(1.3)
    for _ in range(20):
        cal = cal.observe(10_000, 13_000)
    cal = cal.observe(10_000, 20_000)  # believable but odd
    assert 1.3 < cal.factor < 1.4


def test_follows_a_drift() -> None:
    cal = Calibrator(1.2)
    for _ in range(40):
        cal = cal.observe(10_000, 12_000)
    for _ in range(40):
        cal = cal.observe(10_000, 15_000)
    assert cal.factor == pytest.approx(1.5, rel=0.01)


def test_works_with_a_counter_session() -> None:
    o200k = TiktokenTokenizer.load("o200k_base")
    counter = TokenCounter(EstimatingTokenizer(o200k, 1.3), "anthropic")
    cal = Calibrator(counter.factor)
    rng = random.Random(3)
    words = ["alpha", "beta", "gamma", "delta", "epsilon", "zeta", "eta", "theta", "iota", "kappa"]
    items: list[Item] = []
    for turn in range(12):
        content = " ".join(rng.choice(words) for _ in range(rng.randint(20, 400)))
        items.append(
            Item(
                id=str(turn),
                role="user",
                component=Component.HISTORY,
                parts=(TextPart(text=content),),
            )
        )
        tally = counter.tally_request(items)
        billed = round(tally.raw * 1.45) + tally.fixed  # what the provider reports
        cal = cal.observe(tally.raw, billed, tally.fixed)
        counter.set_factor(cal.factor)
    final = counter.tally_request(items)
    truth = round(final.raw * 1.45) + final.fixed
    assert counter.count_request(items).tokens == pytest.approx(truth, rel=0.02)


@pytest.mark.parametrize(
    ("raw", "billed", "fixed", "reason"),
    [
        (0, 100, 0, "nothing was counted"),
        (100, 0, 0, "nothing was billed"),
        (100, 120, -1, "negative"),
        (1000, 100, 0, "outside"),  # ratio 0.1: e.g. cached tokens left out
        (100, 10_000, 0, "outside"),
        (1000, 300, 350, "does not exceed the fixed"),
    ],
)
def test_absurd_observations_are_ignored_with_a_reason(
    raw: int, billed: int, fixed: int, reason: str
) -> None:
    cal = Calibrator(1.3).observe(10_000, 12_000)
    after = cal.observe(raw, billed, fixed)
    assert after.factor == cal.factor
    assert after.rejected == 1
    assert after.observations == 1
    assert after.last_rejection is not None
    assert reason in after.last_rejection
    assert after.observe(10_000, 12_000).last_rejection is None


@pytest.mark.parametrize(
    "kwargs",
    [
        {"initial_factor": 0.0},
        {"initial_factor": float("nan")},
        {"initial_factor": 10.0},
        {"initial_factor": 1.0, "decay": 0.0},
        {"initial_factor": 1.0, "decay": 1.5},
        {"initial_factor": 1.0, "prior_tokens": 0.0},
    ],
)
def test_bad_configuration(kwargs: dict[str, Any]) -> None:
    with pytest.raises(ConfigError):
        Calibrator(**kwargs)


observations = st.lists(
    st.tuples(st.integers(-10, 10**6), st.integers(-10, 10**7), st.integers(-5, 5_000)),
    max_size=40,
)


@given(st.floats(0.25, 4.0), observations)
def test_factor_stays_positive_and_bounded(initial: float, obs: list[tuple[int, int, int]]) -> None:
    cal = Calibrator(initial)
    for raw, billed, fixed in obs:
        cal = cal.observe(raw, billed, fixed)
        assert cal.min_factor <= cal.factor <= cal.max_factor
        assert cal.factor > 0
    assert cal.observations + cal.rejected == len(obs)


@given(st.floats(0.5, 2.0), observations)
def test_deterministic(initial: float, obs: list[tuple[int, int, int]]) -> None:
    def run() -> Calibrator:
        cal = Calibrator(initial)
        for raw, billed, fixed in obs:
            cal = cal.observe(raw, billed, fixed)
        return cal

    assert run() == run()
