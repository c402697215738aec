"""Each token class at its own rate: golden costs worked out by hand, the list prices genai-prices ships for cache
reads and writes, and the price settings of podium.toml."""

from __future__ import annotations

import math
from pathlib import Path

import pytest
from genai_prices import Usage, calc_price

from podium.cost import Price, Tokens
from podium.errors import ConfigurationError
from podium.models._config import ModelConfig

ALL_CLASSES = Price(
    input_per_mtok=3.0,
    output_per_mtok=15.0,
    cached_input_per_mtok=0.3,
    cache_write_per_mtok=3.75,
    reasoning_per_mtok=20.0,
)


def test_each_class_is_billed_at_its_own_rate() -> None:
    tokens = Tokens(input=1000, cached_input=2000, cache_write=500, output=100, reasoning=300)
    # USD per million tokens is thousandths of a nano-USD a token: 3.0 -> 3,000 nano-USD a token, and so on.
    expected = 1000 * 3_000 + 2000 * 300 + 500 * 3_750 + 100 * 15_000 + 300 * 20_000
    assert expected == 12_975_000
    assert ALL_CLASSES.cost_of(tokens) == expected


def test_an_unset_class_rate_is_its_parents() -> None:
    price = Price(input_per_mtok=2.0, output_per_mtok=8.0)  # no cache or reasoning rates of its own
    tokens = Tokens(input=10, cached_input=20, cache_write=30, output=40, reasoning=50)
    assert price.cost_of(tokens) == (10 + 20 + 30) * 2_000 + (40 + 50) * 8_000 == 840_000


def test_compute_time_is_billed_at_the_hourly_rate() -> None:
    price = Price(compute_per_hour=0.36)
    assert price.cost_of(Tokens(), compute_seconds=10.0) == 1_000_000  # 10 s of $0.36/h is $0.001
    assert price.cost_of(Tokens(input=5), compute_seconds=0.5) == 50_000


def test_cost_is_exact_decimal_arithmetic_rounded_once() -> None:
    # 0.1 and 0.2 have no exact binary form; billed from the decimals as written, three tokens of each are exact.
    assert Price(0.1, 0.2).cost_of(Tokens(input=3, output=3)) == 900
    # A price of 0.0015 USD per million tokens is 1.5 nano-USD a token: rounded once, half to even.
    assert Price(0.0015, 0.0).cost_of(Tokens(input=1)) == 2
    assert Price(0.0015, 0.0).cost_of(Tokens(input=3)) == 4  # 4.5 -> 4, not 3 x round(1.5) = 6


def test_cost_nano_usd_is_the_uncached_input_and_plain_output_cost() -> None:
    price = Price(0.9, 0.9, compute_per_hour=0.36)
    assert price.cost_nano_usd(12, 5, 10.0) == 17 * 900 + 1_000_000
    assert price.cost_nano_usd(12, 5, 10.0) == price.cost_of(Tokens(input=12, output=5), 10.0)


@pytest.mark.parametrize(
    "field", ["input_per_mtok", "cached_input_per_mtok", "cache_write_per_mtok", "reasoning_per_mtok"]
)
@pytest.mark.parametrize("bad", [-0.1, math.nan, math.inf])
def test_a_rate_must_be_finite_and_not_negative(field: str, bad: float) -> None:
    with pytest.raises(ValueError, match=field):
        Price(**{field: bad})


# --- list prices from genai-prices ---------------------------------------------------------------------------


def test_openai_list_price_has_a_cheaper_cache_read_and_no_cache_write_surcharge() -> None:
    price = Price.listed("gpt-4o", "openai")
    assert price == Price(input_per_mtok=2.5, output_per_mtok=10.0, cached_input_per_mtok=1.25)
    # 1,000 prompt tokens of which 800 cached, 100 output tokens of which 40 reasoning:
    tokens = Tokens(input=200, cached_input=800, output=60, reasoning=40)
    assert price.cost_of(tokens) == 200 * 2_500 + 800 * 1_250 + 60 * 10_000 + 40 * 10_000 == 2_500_000


def test_anthropic_list_price_has_cache_read_and_cache_write_rates() -> None:
    price = Price.listed("claude-3-5-sonnet", "anthropic")
    assert price == Price(
        input_per_mtok=3.0, output_per_mtok=15.0, cached_input_per_mtok=0.3, cache_write_per_mtok=3.75
    )
    assert price.cached_input_per_mtok is not None and price.cached_input_per_mtok < price.input_per_mtok


def test_a_tiered_list_price_is_its_rate_below_the_first_threshold() -> None:
    # genai-prices doubles claude-sonnet-4-5's rates past 200k prompt tokens; a call is priced at the base rates.
    price = Price.listed("claude-sonnet-4-5", "anthropic")
    assert (price.input_per_mtok, price.output_per_mtok) == (3.0, 15.0)
    assert (price.cached_input_per_mtok, price.cache_write_per_mtok) == (0.3, 3.75)


@pytest.mark.parametrize(
    ("model", "provider"), [("claude-3-5-sonnet", "anthropic"), ("gpt-4o", "openai"), ("o3", "openai")]
)
def test_cost_of_agrees_with_genai_prices_own_calculation(model: str, provider: str) -> None:
    tokens = Tokens(input=700, cached_input=200, cache_write=100, output=10, reasoning=0)
    if provider == "openai":
        tokens = Tokens(input=800, cached_input=200, output=10)  # OpenAI reports no cache writes
    # genai-prices counts cache reads and writes inside input_tokens (as OpenAI does, unlike Anthropic).
    usage = Usage(
        input_tokens=tokens.total_input,
        cache_read_tokens=tokens.cached_input,
        cache_write_tokens=tokens.cache_write,
        output_tokens=tokens.total_output,
    )
    theirs = calc_price(usage, model, provider_id=provider).total_price
    assert Price.listed(model, provider).cost_of(tokens) == round(theirs * 1_000_000_000)


def test_claude_golden_cost_with_cache_reads_and_writes() -> None:
    tokens = Tokens(input=700, cached_input=200, cache_write=100, output=10)
    assert (
        Price.listed("claude-3-5-sonnet", "anthropic").cost_of(tokens)
        == 700 * 3_000 + 200 * 300 + 100 * 3_750 + 10 * 15_000
    )
    assert Price.listed("claude-3-5-sonnet", "anthropic").cost_of(tokens) == 2_685_000


def test_an_unknown_model_names_the_fix() -> None:
    with pytest.raises(ConfigurationError, match="state the price"):
        Price.listed("no-such-model", "openai")


# --- podium.toml ---------------------------------------------------------------------------------------------


def write(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "podium.toml"
    path.write_text(text, encoding="utf-8")
    return path


def test_a_price_setting_may_state_each_class_rate(tmp_path: Path) -> None:
    config = ModelConfig.load(
        write(
            tmp_path,
            """
[models.claude]
tier = "frontier"
base_url = "https://api.anthropic.com/v1"
api = "anthropic"
model = "claude-sonnet-4-5"
price = { input_per_mtok = 3, output_per_mtok = 15, cached_input_per_mtok = 0.3, cache_write_per_mtok = 3.75 }
""",
        )
    )
    setting = config.models["claude"]
    assert setting.api == "anthropic"
    assert setting.resolved_price("claude") == Price(3.0, 15.0, cached_input_per_mtok=0.3, cache_write_per_mtok=3.75)


def test_the_wire_protocol_defaults_to_openai_and_must_be_known(tmp_path: Path) -> None:
    base = 'tier = "frontier"\nbase_url = "http://127.0.0.1:9/v1"\nmodel = "m"\nprice = "1/1"\n'
    assert ModelConfig.load(write(tmp_path, f"[models.m]\n{base}")).models["m"].api == "openai"
    with pytest.raises(ConfigurationError, match="models.m.api"):
        ModelConfig.load(write(tmp_path, f'[models.m]\n{base}api = "grpc"\n'))
    with pytest.raises(ConfigurationError, match="cached_input_per_mtok"):
        ModelConfig.load(
            write(
                tmp_path,
                '[models.m]\ntier = "frontier"\nbase_url = "http://127.0.0.1:9/v1"\nmodel = "m"\n'
                "price = { input_per_mtok = 1, output_per_mtok = 1, cached_input_per_mtok = -1 }\n",
            )
        )
