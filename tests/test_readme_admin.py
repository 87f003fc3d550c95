"""The README's Administration examples run as written against a live gateway."""

from __future__ import annotations

import json
import os
import re
import shlex
import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest

from edge.cli import main
from tests.support.gateway import ADMIN_TOKEN, GatewayProcess, gateway_env

README = Path(__file__).resolve().parent.parent / "README.md"
EXAMPLE_KEY_ID = "3f9c0a1b2c3d4e5f"


def admin_section() -> str:
    return README.read_text().split("\n## Administration\n", 1)[1].split("\n## ", 1)[0]


@pytest.fixture(scope="module")
def url() -> Iterator[str]:
    proc = GatewayProcess(gateway_env("memory://", None)).start()
    yield proc.url
    proc.stop()


def test_the_curl_example_creates_an_account_a_branch_and_a_key(url: str, tmp_path: Path) -> None:
    (block,) = re.findall(r"```sh\n(.*?)```", admin_section(), flags=re.S)
    (tmp_path / ".edge").mkdir()
    (tmp_path / ".edge" / "demo.env").write_text(
        f"export EDGE_URL={url}\nexport EDGE_ADMIN_TOKEN={ADMIN_TOKEN}\n"
    )
    # Each curl prints one JSON document; `-w` separates them so each can be read alone.
    script = block.replace("curl -s ", "curl -s -w '\\n' ")
    env = {k: v for k, v in os.environ.items() if not k.startswith("EDGE_")}
    done = subprocess.run(
        ["bash", "-e", "-c", script],
        cwd=tmp_path,
        env=env,
        capture_output=True,
        text=True,
        timeout=30,
    )
    assert done.returncode == 0, done.stderr
    answers = [json.loads(line) for line in done.stdout.splitlines() if line.strip()]
    assert [a.get("error") for a in answers] == [None, None, None, None], answers
    account, branch, key, quota = answers
    assert account["id"] == "acct_acme"
    assert quota["effective"]["models"] == ["openai/*", "claude-*"], quota
    assert quota["effective"]["alert_thresholds"] == [0.5, 0.8, 1.0], quota
    assert quota["effective"]["budget_timezone"] == "Europe/Paris", quota
    assert branch["id"] == "br-prod"
    assert key["key"].startswith("ek_") and key["branch"] == "br-prod"


def test_the_command_line_example_runs_as_written(
    url: str, capsys: pytest.CaptureFixture[str]
) -> None:
    (block,) = re.findall(r"```console\n(.*?)```", admin_section(), flags=re.S)
    commands = [line[2:] for line in block.splitlines() if line.startswith("$ ")]
    assert commands[0].startswith("export ")
    key_id = ""
    outputs = {}
    for command in commands[1:]:
        argv = shlex.split(command.replace(EXAMPLE_KEY_ID, key_id))
        assert argv[:2] == ["edge", "admin"], argv
        code = main(["admin", "--url", url, "--token", ADMIN_TOKEN, *argv[2:]])
        out = capsys.readouterr()
        assert code == 0, (command, out.err)
        if argv[2:4] == ["keys", "create"]:
            found = re.search(r"\b[0-9a-f]{16}\b", out.out)
            assert found is not None, out.out
            key_id = found.group(0)
        outputs[" ".join(argv[2:4])] = out.out
    assert key_id
    # The usage table the README shows has the columns and rows the command prints.
    shown = block.split("$ edge admin usage", 1)[1].split("\n$ ", 1)[0]
    header = next(line for line in shown.splitlines() if line.startswith("SCOPE"))
    printed = outputs["usage --key"]
    assert header.split() in [line.split() for line in printed.splitlines()], printed
    assert re.search(r"^key\s+requests_per_minute\s+100\s", printed, flags=re.M), printed
    assert key_id in outputs["keys list"]  # the listing pages through to the new key
    # The export's header is the one the README shows.
    shown_export = block.split("$ edge admin usage-export", 1)[1].splitlines()[1]
    assert outputs["usage-export --group-by"].splitlines()[0] == shown_export
    # The last `quota set` is the account's: its access list is set as the README shows it.
    assert "openai/*" in outputs["quota set"] and "claude-*" in outputs["quota set"]
    audit = json.loads(outputs["audit --account"])
    actions = [entry["action"] for entry in audit["data"]]
    assert len(actions) >= 7, actions
