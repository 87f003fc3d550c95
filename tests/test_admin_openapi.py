"""schemathesis against /admin/v1/openapi.json on a live gateway: no server error, no status,
content type, header or body outside the document, for valid and invalid requests alike."""

from __future__ import annotations

import asyncio
import shutil
import sys
from collections.abc import AsyncIterator
from pathlib import Path

import aiohttp
import pytest

from tests.support.gateway import ADMIN_TOKEN, GatewayProcess, gateway_env

pytestmark = pytest.mark.timeout(300)
CHECKS = ",".join(
    [
        "not_a_server_error",
        "status_code_conformance",
        "content_type_conformance",
        "response_schema_conformance",
        "response_headers_conformance",
    ]
)


@pytest.fixture
async def live_url() -> AsyncIterator[str]:
    proc = GatewayProcess(gateway_env("memory://", None))
    await asyncio.to_thread(proc.start)
    try:
        yield proc.url
    finally:
        await asyncio.to_thread(proc.stop)


async def _seed(url: str) -> tuple[str, str]:
    """An account, a branch and a key, so operations on existing records get exercised."""
    headers = {"Authorization": f"Bearer {ADMIN_TOKEN}"}
    async with aiohttp.ClientSession(headers=headers) as http:
        base = f"{url}/admin/v1"
        async with http.post(f"{base}/accounts", json={"id": "acct-fuzz"}) as resp:
            assert resp.status == 201
        async with http.post(f"{base}/accounts/acct-fuzz/branches", json={"id": "br-a"}) as resp:
            assert resp.status == 201
        async with http.post(f"{base}/keys", json={"account": "acct-fuzz"}) as resp:
            assert resp.status == 201
            key = await resp.json()
    return "acct-fuzz", key["id"]


async def test_admin_api_conforms_to_its_openapi_document(live_url: str, tmp_path: Path) -> None:
    account, key_id = await _seed(live_url)
    config = tmp_path / "schemathesis.toml"
    config.write_text(
        f'[parameters]\naccount = "{account}"\nkey_id = "{key_id}"\nbranch = "br-a"\n'
    )
    binary = shutil.which("schemathesis", path=str(Path(sys.executable).parent))
    assert binary is not None, "schemathesis is in the test extra"
    proc = await asyncio.create_subprocess_exec(
        binary,
        "--config-file",
        str(config),
        "run",
        f"{live_url}/admin/v1/openapi.json",
        "--url",
        f"{live_url}/admin/v1",
        "-H",
        f"Authorization: Bearer {ADMIN_TOKEN}",
        "--checks",
        CHECKS,
        "--max-examples",
        "25",
        "--seed",
        "20260101",
        "--no-color",
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.STDOUT,
        # Its example database goes here, not into the repository (where pytest would meet it).
        cwd=tmp_path,
    )
    out, _ = await asyncio.wait_for(proc.communicate(), timeout=240)
    text = out.decode(errors="replace")
    assert proc.returncode == 0, text[-8000:]
    assert " passed" in text and "failed" not in text.split("SUMMARY")[-1], text[-4000:]
