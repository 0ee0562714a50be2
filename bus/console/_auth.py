"""Who is at the console: OpenID Connect login or the bus's certificates, two roles, CSRF tokens.

With certificates (``bus console`` over HTTPS, :mod:`._serve`), the TLS handshake has verified
the client's certificate against the site CA; :class:`CertificateRoles` reads its subject
(``CN=<name>,OU=service|administration,O=dcant-bus``, as ``bus pki issue`` writes it) and maps the
name to a role: every request on that connection is that principal's.

Login is the authorisation code flow with PKCE against the provider named by
``BUS_CONSOLE_OIDC_ISSUER`` (discovery document, token endpoint, JWKS); the ID token is verified
with joserfc (signature by a key of the issuer's JWKS, ``iss``, ``aud``, ``exp``, ``nonce``). The
role comes from the token's ``roles`` claim: ``operateur`` makes an operator, anything else an
auditor (read-only). The session (signed cookie) keeps the name, the role and a CSRF token that
every operator form posts back; the token never leaves the server.
"""

from __future__ import annotations

import base64
import dataclasses
import hashlib
import secrets
import time
from typing import Any, Literal

import httpx
from joserfc import jwt
from joserfc.jwk import KeySet

from bus._errors import SecurityError

__all__ = ["CertificateRoles", "OidcClient", "Role", "csrf_token", "role_of"]

Role = Literal["auditeur", "operateur"]


def role_of(claims: dict[str, Any]) -> Role:
    roles = claims.get("roles") or []
    return "operateur" if "operateur" in roles else "auditeur"


@dataclasses.dataclass(frozen=True)
class CertificateRoles:
    """Which of the bus's certificates open the console, and as what."""

    operators: frozenset[str]
    auditors: frozenset[str]

    def principal(self, scope: dict[str, Any]) -> tuple[str, Role | None] | None:
        """The verified client certificate's name and role (``None``: not allowed in); ``None`` without one."""
        from bus._https import certificate_principal

        found = certificate_principal(scope)
        if found is None:
            return None
        name, kind = found
        if kind is None:
            return name, None
        return name, "operateur" if name in self.operators else "auditeur" if name in self.auditors else None


def csrf_token(session: dict[str, Any]) -> str:
    """The session's CSRF token (made on first use)."""
    if "csrf" not in session:
        session["csrf"] = secrets.token_urlsafe(32)
    return str(session["csrf"])


class OidcClient:
    """The console as a relying party of one OpenID Connect provider."""

    def __init__(self, issuer: str, client_id: str, client_secret: str, redirect_uri: str) -> None:
        self.issuer = issuer.rstrip("/")
        self.client_id, self.client_secret, self.redirect_uri = client_id, client_secret, redirect_uri
        self._config: dict[str, Any] | None = None

    async def _discover(self) -> dict[str, Any]:
        if self._config is None:
            async with httpx.AsyncClient(timeout=10) as http:
                response = await http.get(f"{self.issuer}/.well-known/openid-configuration")
                response.raise_for_status()
                self._config = response.json()
        return self._config

    async def login_url(self, session: dict[str, Any]) -> str:
        """Where to send the browser; remembers state, nonce and the PKCE verifier in the session."""
        config = await self._discover()
        state, nonce, verifier = (secrets.token_urlsafe(24) for _ in range(3))
        session.update(oidc_state=state, oidc_nonce=nonce, oidc_verifier=verifier)
        challenge = base64.urlsafe_b64encode(hashlib.sha256(verifier.encode()).digest()).rstrip(b"=").decode()
        query = httpx.QueryParams(response_type="code", client_id=self.client_id, redirect_uri=self.redirect_uri,
                                  scope="openid profile", state=state, nonce=nonce, code_challenge=challenge,
                                  code_challenge_method="S256")
        return f"{config['authorization_endpoint']}?{query}"

    async def finish(self, session: dict[str, Any], code: str, state: str) -> dict[str, Any]:
        """Exchange the code and verify the ID token; returns its claims."""
        if not state or state != session.pop("oidc_state", None):
            raise SecurityError("OpenID Connect state mismatch", hint="start the login again")
        config = await self._discover()
        async with httpx.AsyncClient(timeout=10) as http:
            token = await http.post(config["token_endpoint"], data={
                "grant_type": "authorization_code", "code": code, "redirect_uri": self.redirect_uri,
                "code_verifier": session.pop("oidc_verifier", ""), "client_id": self.client_id,
                "client_secret": self.client_secret})
            token.raise_for_status()
            jwks = (await http.get(config["jwks_uri"])).json()
        try:
            decoded = jwt.decode(token.json()["id_token"], KeySet.import_key_set(jwks))
            claims = dict(decoded.claims)
            jwt.JWTClaimsRegistry(iss={"essential": True, "value": config["issuer"]},
                                  aud={"essential": True, "value": self.client_id},
                                  nonce={"essential": True, "value": session.pop("oidc_nonce", None)},
                                  exp={"essential": True}).validate(claims)
        except Exception as error:  # joserfc's errors: a token we cannot trust
            raise SecurityError(f"ID token refused: {error}", hint="check the provider and the client id") from error
        if claims["exp"] < time.time():
            raise SecurityError("ID token expired", hint="log in again")
        return claims
