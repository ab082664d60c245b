"""BillingCalculator against DashScope's published price tables (CNY per 1,000 tokens), no database."""

from __future__ import annotations

import logging
from decimal import Decimal

import pytest
from billing_service.services.billing_calculator import (
    BillingCalculator,
    PriceInfo,
    PriceTier,
)

from shared import demo_data

D = Decimal

# DashScope's list prices (https://help.aliyun.com/zh/model-studio/models), as the demo data loads them.
QWEN_PLUS = PriceInfo(
    billing_mode="tier",
    tiers=(
        PriceTier(0, 128_000, D("0.0008"), D("0.002")),
        PriceTier(128_000, 256_000, D("0.0024"), D("0.02")),
        PriceTier(256_000, 1_000_000, D("0.0048"), D("0.048")),
    ),
)
QWEN3_MAX = PriceInfo(
    billing_mode="tier",
    tiers=(
        PriceTier(0, 32_000, D("0.0025"), D("0.01")),
        PriceTier(32_000, 128_000, D("0.004"), D("0.016")),
        PriceTier(128_000, 252_000, D("0.007"), D("0.028")),
    ),
)
QWEN_TURBO = PriceInfo(billing_mode="simple", input_price=D("0.0003"), output_price=D("0.0006"))

calculator = BillingCalculator()


@pytest.mark.parametrize(
    ("price", "input_tokens", "output_tokens", "cost", "unit_prices"),
    [
        # qwen-plus: exactly 128,000 input tokens is still the first tier; 128,001 prices the whole call
        # (input and output) with the second tier.
        (QWEN_PLUS, 128_000, 1_000, D("0.1044"), (D("0.0008"), D("0.002"))),
        (QWEN_PLUS, 128_001, 1_000, D("0.3272024"), (D("0.0024"), D("0.02"))),
        (QWEN_PLUS, 0, 0, D("0"), (D("0.0008"), D("0.002"))),
        (QWEN_PLUS, 0, 500, D("0.001"), (D("0.0008"), D("0.002"))),
        (QWEN_PLUS, 1, 1, D("0.0000028"), (D("0.0008"), D("0.002"))),
        (QWEN_PLUS, 256_000, 2_000, D("0.6544"), (D("0.0024"), D("0.02"))),
        (QWEN_PLUS, 256_001, 2_000, D("1.3248048"), (D("0.0048"), D("0.048"))),
        (QWEN_PLUS, 1_000_000, 10, D("4.80048"), (D("0.0048"), D("0.048"))),
        # qwen3-max: 32K and 128K boundaries
        (QWEN3_MAX, 32_000, 100, D("0.081"), (D("0.0025"), D("0.01"))),
        (QWEN3_MAX, 32_001, 100, D("0.129604"), (D("0.004"), D("0.016"))),
        (QWEN3_MAX, 128_000, 1_000, D("0.528"), (D("0.004"), D("0.016"))),
        (QWEN3_MAX, 128_001, 1_000, D("0.924007"), (D("0.007"), D("0.028"))),
        (QWEN3_MAX, 252_000, 0, D("1.764"), (D("0.007"), D("0.028"))),
        # simple: (in × in_price + out × out_price) / 1000
        (QWEN_TURBO, 1_000, 1_000, D("0.0009"), (D("0.0003"), D("0.0006"))),
        (QWEN_TURBO, 7, 3, D("0.0000039"), (D("0.0003"), D("0.0006"))),
    ],
)
def test_cost_matches_the_price_table(
    price: PriceInfo,
    input_tokens: int,
    output_tokens: int,
    cost: Decimal,
    unit_prices: tuple[Decimal, Decimal],
) -> None:
    result = calculator.calculate(price, input_tokens=input_tokens, output_tokens=output_tokens)
    assert result.cost == cost
    assert (result.input_price, result.output_price) == unit_prices
    assert result.billing_mode == price.billing_mode
    assert isinstance(result.cost, Decimal)


def test_cost_is_exact_not_rounded() -> None:
    result = calculator.calculate(QWEN_PLUS, input_tokens=1, output_tokens=0)
    assert result.cost == D("0.0000008")  # far below 4 places, kept exactly


def test_input_beyond_the_last_tier_uses_the_last_tier_and_warns(caplog: pytest.LogCaptureFixture) -> None:
    with caplog.at_level(logging.WARNING):
        result = calculator.calculate(QWEN3_MAX, input_tokens=252_001, output_tokens=0, model="qwen3-max")
    assert result.cost == D("1.764007")
    assert (result.input_price, result.output_price) == (D("0.007"), D("0.028"))
    assert any("beyond the last price tier" in r.getMessage() for r in caplog.records)


def test_tiers_need_not_be_given_in_order() -> None:
    shuffled = PriceInfo(billing_mode="tier", tiers=tuple(reversed(QWEN_PLUS.tiers)))
    assert calculator.calculate(shuffled, input_tokens=128_000, output_tokens=0).input_price == D("0.0008")
    assert calculator.calculate(shuffled, input_tokens=128_001, output_tokens=0).input_price == D("0.0024")


def test_unbounded_last_tier_holds_any_input(caplog: pytest.LogCaptureFixture) -> None:
    open_ended = PriceInfo(
        billing_mode="tier",
        tiers=(PriceTier(0, 1000, D("1"), D("1")), PriceTier(1000, None, D("2"), D("2"))),
    )
    with caplog.at_level(logging.WARNING):
        result = calculator.calculate(open_ended, input_tokens=10**9, output_tokens=0)
    assert result.cost == D("2000000")
    assert not caplog.records


@pytest.mark.parametrize(
    "price",
    [
        None,
        PriceInfo(billing_mode="tier", tiers=()),
        PriceInfo(billing_mode="simple", input_price=D("0.001"), output_price=None),
        # CONTRACT §3: prices are CNY; bills and usage add costs without converting currencies.
        PriceInfo(billing_mode="simple", input_price=D("0.001"), output_price=D("0.001"), currency="USD"),
    ],
)
def test_no_usable_price_bills_zero_and_logs_an_error(
    price: PriceInfo | None, caplog: pytest.LogCaptureFixture
) -> None:
    with caplog.at_level(logging.ERROR):
        result = calculator.calculate(price, input_tokens=100, output_tokens=100, model="mystery")
    assert result.cost == 0
    assert result.billing_mode is None
    assert [r for r in caplog.records if r.levelno == logging.ERROR]


GAPPED = PriceInfo(
    billing_mode="tier",
    tiers=(PriceTier(0, 1000, D("1"), D("1")), PriceTier(2000, None, D("5"), D("5"))),
)


@pytest.mark.parametrize(
    ("input_tokens", "warned"),
    [(0, False), (1000, False), (1001, True), (2000, True), (2001, False)],
)
def test_input_in_a_gap_between_tiers_uses_the_tier_above_and_warns(
    caplog: pytest.LogCaptureFixture, input_tokens: int, warned: bool
) -> None:
    """No tier holds 1,001–2,000 (min_tokens < input ≤ max_tokens): the operator's table has a gap."""
    with caplog.at_level(logging.WARNING):
        result = calculator.calculate(GAPPED, input_tokens=input_tokens, output_tokens=0, model="gapped")
    assert result.input_price == (D("1") if input_tokens <= 1000 else D("5"))
    assert any("gap between price tiers" in r.getMessage() for r in caplog.records) == warned


def test_a_first_tier_above_zero_leaves_small_input_in_a_gap(caplog: pytest.LogCaptureFixture) -> None:
    late_start = PriceInfo(billing_mode="tier", tiers=(PriceTier(100, None, D("1"), D("1")),))
    with caplog.at_level(logging.WARNING):
        assert calculator.calculate(late_start, input_tokens=0, output_tokens=0).input_price == D("1")
    assert any("gap between price tiers" in r.getMessage() for r in caplog.records)


def _demo_tier_prices() -> dict[str, PriceInfo]:
    return {
        name: PriceInfo(billing_mode="tier", tiers=tuple(PriceTier(*tier) for tier in tiers))
        for name, _display, _category, _description, mode, _simple, tiers in demo_data.MODELS
        if mode == "tier"
    }


def test_the_demo_tier_tables_are_the_ones_tested_here() -> None:
    assert _demo_tier_prices() == {"qwen-plus": QWEN_PLUS, "qwen3-max": QWEN3_MAX}


def test_the_demo_tier_tables_have_no_gaps(caplog: pytest.LogCaptureFixture) -> None:
    """Every boundary of the demo data's own tables, and one token on each side of it."""
    prices = _demo_tier_prices()
    with caplog.at_level(logging.WARNING):
        for price in prices.values():
            for tier in price.tiers:
                for bound in (tier.min_tokens, tier.max_tokens):
                    for tokens in {max(bound - 1, 0), bound, bound + 1} if bound is not None else ():
                        calculator.calculate(price, input_tokens=tokens, output_tokens=1)
    assert not [r for r in caplog.records if "gap" in r.getMessage()]
