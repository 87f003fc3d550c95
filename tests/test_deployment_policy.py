"""The pure rules of deployments: declaration, order (tiers, weights, headroom, cooldowns,
stickiness), cooldown lengths and the provider's reset headers."""

from __future__ import annotations

import re
from collections import Counter
from datetime import UTC, datetime
from email.utils import format_datetime
from pathlib import Path

import pytest

from edge.settings import load_settings
from policies.catalog import Catalog, CatalogError, build_catalog
from policies.cooldown import (
    BLAME_WINDOW,
    MAX_COOLDOWN,
    cooldown,
    provider_delay,
    shared_fault,
    streak,
)
from policies.deployments import Deployment, Load, headroom, plan

NOW = 1_000_000.0
IDLE = Load()


def _deps(*weights: float, priority: tuple[int, ...] = ()) -> list[Deployment]:
    tiers = priority or (0,) * len(weights)
    return [
        Deployment(f"d{i}", "p", "m", weight=w, priority=t)
        for i, (w, t) in enumerate(zip(weights, tiers, strict=True))
    ]


def _catalog(model: dict[str, object]) -> Catalog:
    providers = {
        "a": {"kind": "openai", "base_url": "http://a", "api_key": "k"},
        "b": {"kind": "azure-openai", "base_url": "http://b", "api_key": "k"},
    }
    return build_catalog({"providers": providers, "models": [model]}, {})


def test_a_model_lists_deployments_and_the_first_is_its_provider() -> None:
    catalog = _catalog(
        {
            "id": "gpt",
            "upstream": "gpt-4o",
            "deployments": [
                {"provider": "a", "weight": 3, "rpm": 100},
                {"provider": "b", "upstream": "my-gpt", "priority": 1, "tpm": 5000},
            ],
        }
    )
    model = catalog.resolve("gpt")
    assert model is not None
    assert (model.provider, model.upstream) == ("a", "gpt-4o")
    assert model.served_by() == (
        Deployment("a", "a", "gpt-4o", weight=3.0, rpm=100),
        Deployment("b", "b", "my-gpt", priority=1, tpm=5000),
    )


def test_a_one_provider_model_is_its_own_deployment() -> None:
    model = _catalog({"id": "gpt", "provider": "a"}).resolve("gpt")
    assert model is not None
    assert model.deployments == ()
    assert model.served_by() == (Deployment("a", "a", "gpt"),)


@pytest.mark.parametrize(
    ("deployments", "says"),
    [
        ([], "non-empty"),
        ([{"provider": "nope"}], "unknown provider"),
        ([{"provider": "a", "weight": 0}], "above 0"),
        ([{"provider": "a", "weight": True}], "number"),
        ([{"provider": "a", "priority": -1}], "priority"),
        ([{"provider": "a", "rpm": 0}], "positive"),
        ([{"provider": "a"}, {"provider": "a"}], "names must differ"),
        ([{"provider": "a", "region": "x"}], "unknown fields"),
    ],
)
def test_invalid_deployments_are_refused(deployments: list[object], says: str) -> None:
    with pytest.raises(CatalogError, match=says):
        _catalog({"id": "gpt", "deployments": deployments})


def test_provider_and_deployments_together_are_refused() -> None:
    with pytest.raises(CatalogError, match="either"):
        _catalog({"id": "gpt", "provider": "a", "deployments": [{"provider": "b"}]})


def test_weights_hold_exactly_over_3000_picks() -> None:
    deps = _deps(1, 2, 3)
    turn = [0.0] * 3
    firsts = Counter(plan(deps, [IDLE] * 3, NOW, turn)[0] for _ in range(3000))
    assert firsts == {0: 500, 1: 1000, 2: 1500}


def test_the_order_tries_the_chosen_then_its_tier_then_later_tiers() -> None:
    deps = _deps(1, 5, 2, 9, priority=(0, 0, 0, 1))
    order = plan(deps, [IDLE] * 4, NOW, [0.0] * 4)
    assert order == [1, 2, 0, 3]


def test_a_cooling_deployment_is_left_out_and_a_lower_tier_serves() -> None:
    deps = _deps(1, 1, priority=(0, 1))
    loads = [Load(cooled_until=NOW + 5), IDLE]
    assert plan(deps, loads, NOW, [0.0, 0.0]) == [1]
    lifted = [Load(cooled_until=NOW - 1, strikes=2), IDLE]
    assert plan(deps, lifted, NOW, [0.0, 0.0]) == [0, 1]
    assert plan(deps, [Load(cooled_until=NOW + 5)] * 2, NOW, [0.0, 0.0]) == []


def test_weight_shifts_away_near_a_provider_side_limit() -> None:
    dep = Deployment("d", "p", "m", rpm=100, tpm=10_000)
    assert headroom(dep, Load(requests=80)) == 1.0
    assert headroom(dep, Load(requests=90)) == pytest.approx(0.5)
    assert headroom(dep, Load(requests=50, tokens=9_500)) == pytest.approx(0.25)
    assert headroom(dep, Load(tokens=10_000)) == 0.0
    deps = [dep, Deployment("e", "p", "m")]
    turn = [0.0, 0.0]
    picks = Counter(plan(deps, [Load(requests=90), IDLE], NOW, turn)[0] for _ in range(300))
    assert picks == {0: 100, 1: 200}  # weights 1 and 1, the first at half its weight


def test_at_its_limit_a_deployment_comes_after_every_one_with_capacity() -> None:
    deps = _deps(5, 1, priority=(0, 1))
    limited = [Deployment("d0", "p", "m", weight=5, rpm=10), deps[1]]
    assert plan(limited, [Load(requests=10), IDLE], NOW, [0.0, 0.0]) == [1, 0]


def test_the_deployment_holding_a_conversation_goes_first_while_healthy() -> None:
    deps = _deps(9, 1)
    assert plan(deps, [IDLE, IDLE], NOW, [0.0, 0.0], sticky="d1") == [1, 0]
    cooling = [IDLE, Load(cooled_until=NOW + 1)]
    assert plan(deps, cooling, NOW, [0.0, 0.0], sticky="d1") == [0]


def test_cooldowns_double_with_the_streak_and_are_bounded() -> None:
    assert [cooldown(n, None) for n in (1, 2, 3)] == [2.0, 4.0, 8.0]
    assert cooldown(40, None) == MAX_COOLDOWN
    assert cooldown(1, 1.5) == 1.5  # the provider's own delay, as it asked
    assert cooldown(1, 10_000.0) == MAX_COOLDOWN
    assert streak(2, NOW - 10, NOW) == 3
    assert streak(2, NOW - 10_000, NOW) == 1
    assert streak(0, 0.0, NOW) == 1


def test_provider_delays_are_read_from_each_header_style() -> None:
    assert provider_delay([("Retry-After", "7")], NOW) == 7.0
    assert provider_delay([("retry-after-ms", "1500"), ("Retry-After", "9")], NOW) == 1.5
    when = datetime.fromtimestamp(NOW + 30, UTC)
    assert provider_delay([("Retry-After", format_datetime(when, usegmt=True))], NOW) == 30.0
    openai = [("x-ratelimit-reset-requests", "1m2.5s"), ("x-ratelimit-reset-tokens", "20ms")]
    assert provider_delay(openai, NOW) == pytest.approx(62.5)
    anthropic = [("anthropic-ratelimit-requests-reset", when.isoformat().replace("+00:00", "Z"))]
    assert provider_delay(anthropic, NOW) == pytest.approx(30.0)
    assert provider_delay([("x-ratelimit-remaining-requests", "0")], NOW) is None
    # The limit at 0 is the one that was hit: its reset, not a longer one of another limit.
    tokens_hit = [*openai, ("x-ratelimit-remaining-requests", "4999")]
    tokens_hit.append(("x-ratelimit-remaining-tokens", "0"))
    assert provider_delay(tokens_hit, NOW) == pytest.approx(0.02)
    claude = [
        ("anthropic-ratelimit-requests-remaining", "0"),
        ("anthropic-ratelimit-requests-reset", when.isoformat()),
        ("anthropic-ratelimit-tokens-remaining", "100"),
        ("anthropic-ratelimit-tokens-reset", datetime.fromtimestamp(NOW + 300, UTC).isoformat()),
    ]
    assert provider_delay(claude, NOW) == pytest.approx(30.0)
    assert provider_delay([("Retry-After", "soon")], NOW) is None


def test_one_accounts_5xx_or_timeouts_never_cool_a_deployment_for_everyone() -> None:
    # Rate limits and transport failures are the deployment's own: they always count.
    for fault in ("rate_limited", "unreachable", "interrupted"):
        assert shared_fault(fault, "acct-a", None, NOW)
    for fault in ("server_error", "timeout"):
        assert not shared_fault(fault, "acct-a", None, NOW)  # the first: a suspect only
        assert not shared_fault(fault, "acct-a", ("acct-a", NOW - 1), NOW)  # the same account
        assert shared_fault(fault, "acct-b", ("acct-a", NOW - 1), NOW)  # a second account
        stale = ("acct-a", NOW - BLAME_WINDOW - 1)
        assert not shared_fault(fault, "acct-b", stale, NOW)  # too long after the first


def test_the_readmes_deployments_example_loads_as_written(tmp_path: Path) -> None:
    """The catalog example in the README's deployments section, through the settings loader
    an operator's EDGE_CONFIG goes through."""
    text = (Path(__file__).resolve().parent.parent / "README.md").read_text("utf-8")
    (example,) = [b for b in re.findall(r"```toml\n(.*?)```", text, re.S) if "deployments" in b]
    config = tmp_path / "edge.toml"
    config.write_text(example)
    env = {"EDGE_CONFIG": str(config)}
    env |= dict.fromkeys(("OPENAI_MAIN_KEY", "AZURE_EU_KEY", "AZURE_US_KEY"), "sk-test")
    model = load_settings(env).catalog.resolve("gpt-4-1")
    assert model is not None
    tiers = [(d.provider, d.upstream, d.weight, d.priority) for d in model.deployments]
    assert tiers == [
        ("azure-eu", "gpt-41-eu", 3.0, 0),
        ("azure-us", "gpt-41-us", 1.0, 0),
        ("openai-main", "gpt-4.1", 1.0, 1),
    ]
