"""A local stand-in for Google's OAuth token endpoint: a service account whose `token_uri`
points here, JWT assertions verified with the account's public key, and the tokens issued
(which the fake upstream then requires as bearers)."""

from __future__ import annotations

import json
import time
from pathlib import Path
from typing import Any

import jwt
from aiohttp import web
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa

from tests.support.ports import free_port

EMAIL = "edge-test@edge-test-project.iam.gserviceaccount.com"


class TokenServer:
    """Issues a token per valid assertion; `expires_in` is what each token says."""

    def __init__(self, expires_in: int = 3600) -> None:
        self.expires_in = expires_in
        self.port = free_port()
        self.issued: list[str] = []
        self.expiries: list[float] = []  # when each issued token ends (time.time())
        self._key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
        self._runner: web.AppRunner | None = None

    @property
    def token_uri(self) -> str:
        """Where the service account asks for tokens."""
        return f"http://127.0.0.1:{self.port}/token"

    def service_account_file(self, folder: Path) -> Path:
        """A service-account key file for this server."""
        pem = self._key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        ).decode()
        info = {
            "type": "service_account",
            "project_id": "edge-test-project",
            "private_key_id": "edge-test-key",
            "private_key": pem,
            "client_email": EMAIL,
            "client_id": "1",
            "token_uri": self.token_uri,
        }
        path = folder / "service-account.json"
        path.write_text(json.dumps(info))
        return path

    def check_bearer(self, request: web.Request, body: bytes) -> str | None:
        """None when the request's bearer is a token this server issued and still valid."""
        token = request.headers.get("Authorization", "").removeprefix("Bearer ")
        if token not in self.issued:
            return "the bearer token was not issued by the token endpoint"
        if self.expiries[self.issued.index(token)] <= time.time():
            return "the bearer token has expired"
        return None

    async def _token(self, request: web.Request) -> web.Response:
        form = await request.post()
        try:
            claims: dict[str, Any] = jwt.decode(
                str(form.get("assertion")),
                self._key.public_key(),
                algorithms=["RS256"],
                # google-auth names Google's own token endpoint as the audience, whatever
                # the file's token_uri.
                audience=[self.token_uri, "https://oauth2.googleapis.com/token"],
            )
        except jwt.PyJWTError as exc:
            return web.json_response(
                {"error": "invalid_grant", "error_description": str(exc)}, status=400
            )
        if claims.get("iss") != EMAIL:
            return web.json_response({"error": "invalid_grant"}, status=400)
        token = f"ya29.edge-test-{len(self.issued)}"
        self.issued.append(token)
        self.expiries.append(time.time() + self.expires_in)
        return web.json_response(
            {"access_token": token, "expires_in": self.expires_in, "token_type": "Bearer"}
        )

    async def start(self) -> TokenServer:
        """Serve on the free port."""
        app = web.Application()
        app.router.add_post("/token", self._token)
        self._runner = web.AppRunner(app, access_log=None)
        await self._runner.setup()
        await web.TCPSite(self._runner, "127.0.0.1", self.port).start()
        return self

    async def stop(self) -> None:
        """Stop serving."""
        if self._runner is not None:
            await self._runner.cleanup()
