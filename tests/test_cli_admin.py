"""`edge admin ...` against a live gateway process: tables by default, JSON with --json."""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
from collections.abc import Iterator
from datetime import UTC, datetime

import pytest

from edge.cli import main
from edge.cli_admin_render import render
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


def test_no_token_says_which_variable_or_flag_to_set(
    url: str, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("EDGE_ADMIN_TOKEN", raising=False)
    code = main(["admin", "--url", url, "accounts", "list"])
    err = capsys.readouterr().err
    assert code == 2
    assert "EDGE_ADMIN_TOKEN" in err and "--token" in err


def test_quota_set_takes_access_lists_comma_separated(
    url: str, capsys: pytest.CaptureFixture[str]
) -> None:
    assert run(capsys, url, "accounts", "create", "lists")[0] == 0
    code, out, _ = run(
        capsys,
        url,
        "quota",
        "set",
        "--account",
        "lists",
        "models=local/*, claude-*",
        "endpoints=chat",
        json_out=True,
    )
    assert code == 0
    effective = json.loads(out)["effective"]
    assert effective["models"] == ["local/*", "claude-*"] and effective["endpoints"] == ["chat"]


ISO_UTC = re.compile(r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ$")
EPOCH = re.compile(r"\b1\d{9}(\.\d+)?\b")  # epoch seconds of these years


def iso(seconds: float) -> str:
    return datetime.fromtimestamp(seconds, UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def test_render_writes_moments_as_iso_utc() -> None:
    key = {"id": "k1", "created_at": 0, "revoked_at": None, "previous_valid_until": 1796404818.05}
    lines = dict(line.split(None, 1) for line in render("keys", key).splitlines())
    assert lines == {
        "id": "k1",
        "created_at": "1970-01-01T00:00:00Z",
        "revoked_at": "-",
        "previous_valid_until": "2026-12-04T17:20:18Z",
    }
    audit = {"object": "list", "data": [{"id": "1", "at": 1796404818, "actor": "bootstrap"}]}
    assert "2026-12-04T17:20:18Z" in render("audit", audit)
    durations = render("keys", {"grace_seconds": 600, "resets_in": 58.2})  # not moments
    assert durations.split() == ["grace_seconds", "600", "resets_in", "58.2"]


def test_tables_show_dates_and_json_keeps_numbers(
    url: str, capsys: pytest.CaptureFixture[str]
) -> None:
    assert run(capsys, url, "accounts", "create", "dated")[0] == 0
    assert run(capsys, url, "branches", "create", "dated", "br-main")[0] == 0
    code, out, _ = run(capsys, url, "keys", "create", "--account", "dated", json_out=True)
    assert code == 0
    key_id = json.loads(out)["id"]
    assert run(capsys, url, "keys", "rotate", key_id, "--grace", "600")[0] == 0
    code, out, _ = run(capsys, url, "keys", "get", key_id, json_out=True)
    assert code == 0
    record = json.loads(out)
    assert isinstance(record["created_at"], float | int)
    assert isinstance(record["previous_valid_until"], float | int)
    code, out, _ = run(capsys, url, "keys", "get", key_id)
    assert code == 0
    fields = dict(line.split(None, 1) for line in out.splitlines() if line.strip())
    assert fields["created_at"] == iso(record["created_at"])
    assert fields["previous_valid_until"] == iso(record["previous_valid_until"])
    tables = [
        run(capsys, url, *command)[1]
        for command in (
            ("accounts", "list"),
            ("accounts", "get", "dated"),
            ("branches", "list", "dated"),
            ("keys", "list", "--account", "dated"),
            ("audit", "--account", "dated"),
        )
    ]
    for table in tables:
        assert not EPOCH.search(table), table
    header, *rows = tables[4].splitlines()
    at = header.split().index("AT")
    assert rows and all(ISO_UTC.match(row.split()[at]) for row in rows), tables[4]
    code, out, _ = run(capsys, url, "audit", "--account", "dated", json_out=True)
    assert code == 0
    assert all(isinstance(entry["at"], float | int) for entry in json.loads(out)["data"])


@pytest.mark.parametrize("json_flag", [[], ["--json"]], ids=["table", "json"])
def test_a_reader_that_has_gone_gets_no_traceback(url: str, json_flag: list[str]) -> None:
    """`edge admin ... | head`: the pipe's reading end is closed before anything is written."""
    read_end, write_end = os.pipe()
    os.close(read_end)
    admin = [sys.executable, "-m", "edge", "admin", "--url", url, "--token", ADMIN_TOKEN]
    with subprocess.Popen(
        [*admin, *json_flag, "plans"],
        stdout=write_end,
        stderr=subprocess.PIPE,
        text=True,
    ) as proc:
        os.close(write_end)
        _, err = proc.communicate(timeout=60)
    assert proc.returncode == 1, err
    assert err == ""
