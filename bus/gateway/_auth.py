"""Calling systems: OAuth2 client-credentials bearer tokens, or the bus's client certificates.

A certificate was verified against the site CA by the TLS handshake (:mod:`bus._https`);
:func:`certificate_caller` names the client after it. A token must be a JWS of the configured
issuer (signature checked with joserfc against the issuer's JWKS, fetched over HTTPS or loopback
and fetched again once when a token names an unknown ``kid``: key rotation), not expired, for the
gateway's audience; its client (``client_id``, else ``azp``, else ``sub``) must have a
:class:`ClientPolicy`. A missing or bad
token is a 401 problem; an unknown client, or a known one asking beyond its policy, a 403.
"""

from __future__ import annotations

import asyncio
import time
from typing import Any

import httpx
from joserfc import jwt
from joserfc.errors import JoseError
from joserfc.jwk import KeySet

from ._config import ClientPolicy, GatewayConfig, Issuer
from ._problems import GatewayProblem

__all__ = ["Caller", "TokenVerifier", "certificate_caller"]

ALGORITHMS = ["RS256", "PS256", "ES256", "EdDSA"]
REFETCH_AFTER_SECONDS = 30.0


class Caller:
    """Who is calling and what they may do (``policy`` None: the gateway runs without an issuer)."""

    def __init__(self, client_id: str, policy: ClientPolicy | None) -> None:
        self.client_id = client_id
        self.policy = policy

    def _deny(self, what: str) -> GatewayProblem:
        return GatewayProblem(403, "forbidden", f"client {self.client_id!r} may not {what}",
                              hint="ask the gateway's operator to extend the client's policy", client=self.client_id)

    def check_administration(self, siren: str, config: GatewayConfig) -> None:
        if siren not in config.administrations:
            raise GatewayProblem(404, "unknown administration", f"this gateway does not act for SIREN {siren}",
                                 hint=f"use one of {', '.join(config.administrations)}")
        if self.policy is not None and not self.policy.may_act_for(siren):
            raise self._deny(f"act for SIREN {siren}")

    def check_reader_of(self, sirens: tuple[str, ...], config: GatewayConfig) -> None:
        """The caller acts for one of ``sirens`` that this gateway serves (the recipients of a sealed document)."""
        if not any(s in config.administrations and (self.policy is None or self.policy.may_act_for(s))
                   for s in sirens):
            raise self._deny(f"read a document addressed to {', '.join(sirens)}")

    def check_submit(self, flow: str) -> None:
        if self.policy is not None and not self.policy.may_submit(flow):
            raise self._deny(f"submit {flow}")

    def may_read(self, event_type: str) -> bool:
        return self.policy is None or self.policy.may_read(event_type)


def _known(client_id: str, clients: dict[str, ClientPolicy], default: ClientPolicy | None = None) -> Caller:
    policy = clients.get(client_id, default)
    if policy is None:
        raise GatewayProblem(403, "unknown client", f"client {client_id!r} has no policy on this gateway",
                             hint="ask the gateway's operator to register the client")
    return Caller(client_id, policy)


def certificate_caller(scope: dict[str, Any], clients: dict[str, ClientPolicy]) -> Caller | None:
    """The client whose verified certificate opened the connection; None without one.

    A SIREN's certificate not listed in ``clients`` gets :meth:`ClientPolicy.own`; a service's must
    be listed; any other subject (a server's certificate) is refused.
    """
    from bus._https import certificate_principal

    found = certificate_principal(scope)
    if found is None:
        return None
    name, kind = found
    if kind is None:
        raise GatewayProblem(403, "not a client certificate", f"the certificate {name!r} is not a calling "
                             "system's", hint="present a certificate `bus pki issue SIREN|service` wrote")
    return _known(name, clients, ClientPolicy.own(name) if kind == "administration" else None)


def _unauthorized(message: str, hint: str = "obtain a token with the client-credentials grant") -> GatewayProblem:
    return GatewayProblem(401, "unauthorized", message, hint=hint)


class TokenVerifier:
    """Verifies bearer tokens of one issuer; caches its JWKS."""

    def __init__(self, issuer: Issuer, clients: dict[str, ClientPolicy]) -> None:
        self.issuer = issuer
        self.clients = clients
        self._keys: KeySet | None = None
        self._fetched = 0.0
        self._lock = asyncio.Lock()

    async def _keyset(self, *, refresh: bool = False) -> KeySet:
        async with self._lock:
            stale = time.monotonic() - self._fetched > REFETCH_AFTER_SECONDS
            if self._keys is None or (refresh and stale):
                try:
                    async with httpx.AsyncClient(timeout=10) as client:
                        answer = await client.get(self.issuer.jwks_uri)
                        answer.raise_for_status()
                        self._keys = KeySet.import_key_set(answer.json())
                except (httpx.HTTPError, ValueError, JoseError) as exc:
                    raise GatewayProblem(503, "issuer unreachable", f"cannot read the issuer's keys: "
                                         f"{type(exc).__name__}", hint="retry later") from exc
                self._fetched = time.monotonic()
            return self._keys

    async def verify(self, authorization: str | None) -> Caller:
        scheme, _, token = (authorization or "").partition(" ")
        if scheme.lower() != "bearer" or not token.strip():
            raise _unauthorized("this gateway needs an `Authorization: Bearer <token>` header")
        try:
            decoded = await self._decode(token.strip())
            jwt.JWTClaimsRegistry(
                now=int(time.time()), leeway=self.issuer.leeway_seconds,
                iss={"essential": True, "value": self.issuer.issuer},
                aud={"essential": True, "value": self.issuer.audience},
                exp={"essential": True},
            ).validate(decoded.claims)
        except JoseError as exc:
            raise _unauthorized(f"the token is not valid here: {exc.error}"
                                f"{': ' + exc.description if exc.description else ''}") from exc
        claims: dict[str, Any] = decoded.claims
        return _known(str(claims.get("client_id") or claims.get("azp") or claims.get("sub") or ""), self.clients)

    async def _decode(self, token: str) -> jwt.Token:
        keys = await self._keyset()
        try:
            return jwt.decode(token, keys, algorithms=ALGORITHMS)
        except ValueError:
            # Raised by joserfc when no key of the set has the token's kid: maybe a rotation.
            return jwt.decode(token, await self._keyset(refresh=True), algorithms=ALGORITHMS)
