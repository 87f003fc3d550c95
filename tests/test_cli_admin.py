"""`edge admin ...` against a live gateway process: tables by default, JSON with --json."""

from __future__ import annotations

import json
from collections.abc import Iterator

import pytest

from edge.cli import main
from tests.support.gateway import ADMIN_TOKEN, GatewayProcess, gateway_env


@pytest.fixture(scope="module")
def url() -> Iterator[str]:
    proc = GatewayProcess(gateway_env("memory://", None)).start()
    yield proc.url
    proc.stop()


def run(
    capsys: pytest.CaptureFixture[str], url: str, *args: str, json_out: bool = False
) -> tuple[int, str, str]:
    flags = ["admin", "--url", url, "--token", ADMIN_TOKEN, *(["--json"] if json_out else [])]
    code = main([*flags, *args])
    out = capsys.readouterr()
    return code, out.out, out.err


def test_accounts_keys_quota_usage_audit(url: str, capsys: pytest.CaptureFixture[str]) -> None:
    assert run(capsys, url, "accounts", "create", "acme", "--plan", "free")[0] == 0
    code, out, _ = run(capsys, url, "accounts", "list")
    assert code == 0
    assert out.splitlines()[0].split()[:3] == ["ID", "PLAN", "BLOCKED"]
    assert "acme" in out and "free" in out
    assert run(capsys, url, "branches", "create", "acme", "br-main")[0] == 0
    code, out, _ = run(
        capsys, url, "keys", "create", "--account", "acme", "--branch", "br-main", json_out=True
    )
    assert code == 0
    key = json.loads(out)
    assert key["key"].startswith("ek_")
    code, out, _ = run(
        capsys,
        url,
        "quota",
        "set",
        "--key",
        key["id"],
        "requests_per_minute=30",
        "cost_per_day_usd=2.5",
        "tokens_per_day=none",
    )
    assert code == 0
    assert "requests_per_minute=30" in out
    code, out, _ = run(capsys, url, "quota", "get", "--key", key["id"], json_out=True)
    assert json.loads(out)["overrides"] == {
        "requests_per_minute": 30,
        "cost_per_day_usd": 2.5,
        "tokens_per_day": None,
    }
    code, out, _ = run(capsys, url, "usage", "--key", key["id"])
    assert code == 0
    assert "requests_per_minute" in out and "REMAINING" in out
    code, out, _ = run(capsys, url, "keys", "rotate", key["id"], "--grace", "60", json_out=True)
    rotated = json.loads(out)
    assert rotated["key"] != key["key"] and rotated["previous_valid_until"] is not None
    assert run(capsys, url, "keys", "revoke", key["id"])[0] == 0
    code, out, _ = run(capsys, url, "audit", "--account", "acme")
    assert code == 0
    for action in ("account.create", "key.create", "key.quota.put", "key.rotate", "key.revoke"):
        assert action in out
    assert key["key"] not in out and rotated["key"] not in out  # never a secret


def test_refusals_exit_1_with_the_apis_message(
    url: str, capsys: pytest.CaptureFixture[str]
) -> None:
    code, _, err = run(capsys, url, "quota", "set", "--account", "nobody", "requests_per_minute=1")
    assert code == 1
    assert "HTTP 404" in err and "not found" in err
    code, _, err = run(capsys, url, "accounts", "create", "acme2", "--plan", "gold")
    assert code == 1
    assert "'plan'" in err


def test_unreachable_gateway_exits_2(capsys: pytest.CaptureFixture[str]) -> None:
    code, _, err = run(capsys, "http://127.0.0.1:9", "plans")
    assert code == 2
    assert "cannot reach" in err
