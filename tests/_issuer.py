"""A local OpenID Connect provider on loopback for the tests (console, agents' ID tokens): keys made here."""

from __future__ import annotations

import secrets
import socket
import threading
import time
from typing import Any

import uvicorn
from joserfc import jwt
from joserfc.jwk import ECKey, KeySet
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, RedirectResponse, Response
from starlette.routing import Route


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


class Served:
    """An ASGI app served by uvicorn in a thread on a free loopback port (``configure``: its uvicorn.Config)."""

    def __init__(self, app: Any, configure: Any = None) -> None:
        self.port = free_port()
        config = (configure or (lambda a, port: uvicorn.Config(a, host="127.0.0.1", port=port, log_level="warning")))
        self.server = uvicorn.Server(config(app, self.port))
        self.url = f"{'https' if self.server.config.is_ssl else 'http'}://127.0.0.1:{self.port}"
        self.thread = threading.Thread(target=self.server.run, daemon=True)

    def __enter__(self) -> Served:
        self.thread.start()
        while not self.server.started:  # uvicorn sets it once the socket listens
            if not self.thread.is_alive():
                raise RuntimeError("the test server did not start")
            time.sleep(0.01)
        return self

    def __exit__(self, *exc: object) -> None:
        self.server.should_exit = True
        self.thread.join(timeout=10)


class Issuer:
    """The provider: discovery, authorisation (auto-approves ``user``), token, JWKS."""

    def __init__(self, client_id: str = "bus-console", client_secret: str = "s3cret") -> None:
        self.key = ECKey.generate_key("P-256", parameters={"kid": "test-key", "use": "sig", "alg": "ES256"})
        self.client_id, self.client_secret = client_id, client_secret
        self.user: dict[str, Any] = {"sub": "agent-1", "name": "Agent Auditeur", "roles": []}
        self.codes: dict[str, dict[str, Any]] = {}
        self.served = Served(Starlette(routes=[
            Route("/.well-known/openid-configuration", self.discovery), Route("/authorize", self.authorize),
            Route("/token", self.token, methods=["POST"]), Route("/jwks", self.jwks)]))
        self.url = self.served.url

    async def discovery(self, request: Request) -> Response:
        return JSONResponse({"issuer": self.url, "authorization_endpoint": f"{self.url}/authorize",
                             "token_endpoint": f"{self.url}/token", "jwks_uri": f"{self.url}/jwks"})

    async def authorize(self, request: Request) -> Response:
        q = request.query_params
        code = secrets.token_urlsafe(16)
        self.codes[code] = {"nonce": q["nonce"], "user": dict(self.user), "redirect_uri": q["redirect_uri"]}
        return RedirectResponse(f"{q['redirect_uri']}?code={code}&state={q['state']}", status_code=302)

    async def token(self, request: Request) -> Response:
        form = await request.form()
        grant = self.codes.pop(str(form["code"]), None)
        if grant is None or form.get("client_secret") != self.client_secret:
            return JSONResponse({"error": "invalid_grant"}, status_code=400)
        now = int(time.time())
        claims = {**grant["user"], "iss": self.url, "aud": self.client_id, "iat": now, "exp": now + 300,
                  "nonce": grant["nonce"]}
        id_token = jwt.encode({"alg": "ES256", "kid": "test-key"}, claims, self.key)
        return JSONResponse({"access_token": "unused", "token_type": "Bearer", "id_token": id_token})

    def id_token(self, *, key: ECKey | None = None, lifetime: int = 300, **claims: Any) -> str:
        """An agent's ID token signed now by this provider (``key``: another key, for forgeries).

        ProConnect's claims by default; ``claims`` add to or replace them (``None`` drops one).
        """
        now = int(time.time())
        values: dict[str, Any] = {
            "iss": self.url, "aud": self.client_id, "iat": now, "exp": now + lifetime, "auth_time": now - 60,
            "sub": "4b3c1e9f-agent", "uid": "4b3c1e9f-agent", "siret": "21310555400017",
            "email": "jeanne.martin@mairie-test.fr", "idp_id": "71144ab3-ee1a-4401-b7b3-79b44f7daeeb",
            "acr": "eidas1", "amr": ["pwd", "mfa"], **claims}
        values = {k: v for k, v in values.items() if v is not None}
        return jwt.encode({"alg": "ES256", "kid": "test-key"}, values, key or self.key)

    async def jwks(self, request: Request) -> Response:
        return JSONResponse(KeySet([self.key]).as_dict(private=False))
