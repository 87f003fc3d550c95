"""Starting the peer gateways on loopback, each set up the simplest way that routes an OpenAI
Chat Completions call to the fake upstream, and the targets their clients would call."""

from __future__ import annotations

import json
import os
import re
import secrets
from pathlib import Path

from tests.bench.peers import install
from tests.bench.scenarios import Target
from tests.bench.stack import FakeUpstreamProcess, Service
from tests.bench.targets import OPENAI_MODEL, OPENAI_UPSTREAM, service_target
from tests.support.ports import free_port

UPSTREAM_KEY = "sk-bench-upstream"  # the fake upstream accepts any key
_PROXY_VARS = ("http_proxy", "https_proxy", "all_proxy")


def litellm_version() -> str:
    """The LiteLLM release pinned in requirements.in."""
    found = re.search(
        r"^litellm\[proxy\]==(\S+)", (install.LITELLM / "requirements.in").read_text(), re.M
    )
    return found.group(1) if found else "?"


def portkey_version() -> str:
    """The Portkey gateway release pinned in package.json."""
    data = json.loads((install.PORTKEY / "package.json").read_text())
    return str(data["dependencies"]["@portkey-ai/gateway"])


def _env(**extra: str) -> dict[str, str]:
    # Everything stays on loopback: no proxy between a peer and the fake upstream.
    env = {k: v for k, v in os.environ.items() if k.lower() not in _PROXY_VARS}
    env["NO_PROXY"] = env["no_proxy"] = "127.0.0.1,localhost"
    env.update(extra)
    return env


def start_litellm(label: str, upstream: FakeUpstreamProcess, log: Path) -> tuple[Service, Target]:
    """LiteLLM proxy, one worker, config.yaml: the model `gpt-5-4` is `openai/gpt-5.4` at the
    fake upstream; callers use the master key."""
    command = install.litellm()
    key = "sk-bench-" + secrets.token_urlsafe(24)
    env = _env(
        BENCH_UPSTREAM_BASE=f"{upstream.url}/v1",
        BENCH_UPSTREAM_KEY=UPSTREAM_KEY,
        BENCH_MASTER_KEY=key,
        # The model price list ships with the package: no download at start-up.
        LITELLM_LOCAL_MODEL_COST_MAP="True",
    )
    port = free_port()
    argv = [str(command), "--config", str(install.LITELLM / "config.yaml")]
    argv += ["--host", "127.0.0.1", "--port", str(port), "--num_workers", "1"]
    service = Service(label, argv, port, env=env, log=log, startup=180.0).start()
    return service, service_target(service, {"Authorization": f"Bearer {key}"}, OPENAI_MODEL)


def start_portkey(label: str, upstream: FakeUpstreamProcess, log: Path) -> tuple[Service, Target]:
    """The Portkey gateway on Node; each call names the provider and the custom host in
    Portkey's headers, with the upstream key as its bearer."""
    command = install.portkey()
    port = free_port()
    argv = [*command, f"--port={port}", "--headless"]
    service = Service(label, argv, port, env=_env(), log=log, startup=60.0).start()
    headers = {
        "Authorization": f"Bearer {UPSTREAM_KEY}",
        "x-portkey-provider": "openai",
        "x-portkey-custom-host": f"{upstream.url}/v1",
    }
    return service, service_target(service, headers, OPENAI_UPSTREAM)
