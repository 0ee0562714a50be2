"""Who acted: the agent behind an event, as its OpenID Connect identity provider asserted it.

An event may carry an ``actor`` CloudEvents extension (header ``ce_actor``): ProConnect's claims
of the agent's ID token (``sub``, ``uid``, ``siret``, ``email``, ``idp_id``, ``acr``, ``amr``,
``auth_time``), the issuer, the SHA-256 of the ID token (evidence that can be matched against the
provider's logs; the token itself, a bearer credential, never goes on the bus) and, where the
publisher states it, the ``role`` in which the agent acted (``maire``, ``adjoint`` for the
signatory of a deliberation). The header is canonical JSON (sorted keys, no blanks) and is part of
the signed bytes (:meth:`bus.Envelope.signing_bytes`), so an actor edited after signing fails
verification.

:class:`ActorVerifier` turns an ID token into an :class:`Actor` only after verifying it with
joserfc: the issuer must be one of ``BUS_OIDC_ISSUERS``; its discovery document
(``/.well-known/openid-configuration``) must name that issuer; the signature must be by a key of
its JWKS (fetched again once when the token names an unknown ``kid``: rotation); ``aud`` must be
``BUS_OIDC_AUDIENCE``; ``exp``, ``nbf`` and ``iat`` must hold at publication. Each refusal is a
typed :class:`~bus.ActorTokenError`.
"""

from __future__ import annotations

import asyncio
import dataclasses
import hashlib
import json
import re
import time
from collections.abc import Callable, Mapping, Sequence
from typing import Any

import httpx
from joserfc import jws, jwt
from joserfc.errors import BadSignatureError, ExpiredTokenError, InvalidClaimError, JoseError
from joserfc.jwk import KeySet

from ._errors import (
    ActorClaimsError, ActorSignatureError, ActorTokenError, EnvelopeError, ExpiredActorTokenError,
    UnconfiguredIssuerError,
)

__all__ = ["Actor", "ActorVerifier", "actor_from_id_token"]

#: The asymmetric algorithms accepted on ID tokens (ProConnect signs with RS256 or ES256); never ``none`` or HMAC.
ALGORITHMS = ["RS256", "PS256", "ES256", "EdDSA"]
LEEWAY_SECONDS = 30
_REFETCH_AFTER_SECONDS = 30.0
_ROLE = re.compile(r"^[a-z][a-z0-9_-]{0,63}$")
_TEXT_CLAIMS = ("uid", "siret", "email", "idp_id", "acr")


@dataclasses.dataclass(frozen=True, slots=True)
class Actor:
    """The agent who acted: the issuer's verified claims, the ID token's hash, the role stated by the publisher."""

    iss: str
    sub: str
    token_sha256: str
    uid: str | None = None
    siret: str | None = None
    email: str | None = None
    idp_id: str | None = None
    acr: str | None = None
    amr: tuple[str, ...] = ()
    auth_time: int | None = None
    #: The capacity the agent acted in (``maire``, ``adjoint``...): stated by the publisher, not by the issuer.
    role: str | None = None

    def __post_init__(self) -> None:
        if self.role is not None and not _ROLE.match(self.role):
            raise EnvelopeError(f"actor role {self.role!r} is not a lower-case word (maire, adjoint...)",
                                header="ce_actor")

    def with_role(self, role: str | None) -> Actor:
        return dataclasses.replace(self, role=role)

    def to_json(self) -> dict[str, Any]:
        """The claims as the header carries them (absent claims left out)."""
        out = {f.name: getattr(self, f.name) for f in dataclasses.fields(self)}
        out["amr"] = list(self.amr)
        return {k: v for k, v in out.items() if v is not None and v != []}

    def to_header(self) -> str:
        """Canonical JSON: the exact string that travels in ``ce_actor`` and is signed."""
        return json.dumps(self.to_json(), sort_keys=True, separators=(",", ":"), ensure_ascii=False)

    @classmethod
    def from_header(cls, text: str) -> Actor:
        """Parse a ``ce_actor`` header; EnvelopeError when it is not an actor's canonical JSON."""
        try:
            raw = json.loads(text)
        except ValueError as exc:
            raise EnvelopeError("ce_actor is not JSON", header="ce_actor") from exc
        known = {f.name for f in dataclasses.fields(cls)}
        if not isinstance(raw, dict) or not raw.keys() <= known:
            raise EnvelopeError("ce_actor is not an object of actor claims", header="ce_actor")
        strings = ("iss", "sub", "token_sha256", *_TEXT_CLAIMS, "role")
        amr = raw.get("amr", [])
        if (any(k in raw and not isinstance(raw[k], str) for k in strings) or not all(k in raw for k in strings[:3])
                or not (isinstance(amr, list) and all(isinstance(m, str) for m in amr))
                or not isinstance(raw.get("auth_time", 0), int)):
            raise EnvelopeError("ce_actor lacks iss, sub or token_sha256, or a claim has the wrong type",
                                header="ce_actor")
        actor = cls(**{**raw, "amr": tuple(amr)})
        if actor.to_header() != text:
            raise EnvelopeError("ce_actor is not in canonical form (sorted keys, no blanks)", header="ce_actor")
        return actor

    @classmethod
    def from_claims(cls, claims: Mapping[str, Any], token: str, *, role: str | None = None) -> Actor:
        """The actor of verified ID token ``claims`` (ProConnect's names); ``token`` is only hashed."""
        amr = claims.get("amr") or ()
        auth_time = claims.get("auth_time")
        return cls(
            iss=str(claims["iss"]), sub=str(claims["sub"]), token_sha256=hashlib.sha256(token.encode()).hexdigest(),
            **{k: str(claims[k]) for k in _TEXT_CLAIMS if claims.get(k) not in (None, "")},
            amr=tuple(str(m) for m in ([amr] if isinstance(amr, str) else amr)),
            auth_time=int(auth_time) if isinstance(auth_time, (int, float)) else None, role=role)


def _unverified_issuer(token: str) -> str:
    """The ``iss`` a token claims, read before verification only to pick the issuer's keys."""
    try:
        payload = json.loads(jws.extract_compact(token.encode()).payload)
    except (JoseError, ValueError, UnicodeDecodeError) as exc:
        raise ActorClaimsError("the ID token is not a compact JWS") from exc
    issuer = payload.get("iss") if isinstance(payload, dict) else None
    if not isinstance(issuer, str) or not issuer:
        raise ActorClaimsError("the ID token names no issuer (iss)")
    return issuer


class ActorVerifier:
    """Verifies agents' ID tokens against the configured issuers; caches each issuer's JWKS.

    ``issuers``: the identity providers trusted to assert who acted (their ``iss`` URLs);
    ``audience``: this bus's client id at them; ``clock``: seconds since the epoch (tests).
    """

    def __init__(self, issuers: Sequence[str], audience: str, *, leeway: int = LEEWAY_SECONDS,
                 clock: Callable[[], float] = time.time) -> None:
        self.issuers = tuple(i.rstrip("/") for i in issuers)
        self.audience = audience
        self.leeway = leeway
        self.clock = clock
        self._keys: dict[str, tuple[KeySet, float]] = {}
        self._lock = asyncio.Lock()

    async def _keyset(self, issuer: str, *, refresh: bool = False) -> KeySet:
        async with self._lock:
            cached = self._keys.get(issuer)
            if cached is not None and not (refresh and time.monotonic() - cached[1] > _REFETCH_AFTER_SECONDS):
                return cached[0]
            try:
                async with httpx.AsyncClient(timeout=10) as http:
                    answer = await http.get(f"{issuer}/.well-known/openid-configuration")
                    answer.raise_for_status()
                    discovery = answer.json()
                    if str(discovery.get("issuer", "")).rstrip("/") != issuer:
                        raise ActorTokenError("the issuer's discovery document names another issuer", issuer=issuer,
                                              hint="BUS_OIDC_ISSUERS must list the issuer exactly as it names itself")
                    answer = await http.get(str(discovery["jwks_uri"]))
                    answer.raise_for_status()
                    keys = KeySet.import_key_set(answer.json())
            except (httpx.HTTPError, ValueError, KeyError, JoseError) as exc:
                raise ActorTokenError(f"cannot read the issuer's keys ({type(exc).__name__})", issuer=issuer,
                                      hint="check that the identity provider answers, then retry") from exc
            self._keys[issuer] = (keys, time.monotonic())
            return keys

    async def verify(self, token: str, *, role: str | None = None) -> Actor:
        """The :class:`Actor` of ``token`` once verified; a typed ActorTokenError otherwise."""
        issuer = _unverified_issuer(token).rstrip("/")
        if issuer not in self.issuers:
            raise UnconfiguredIssuerError(f"the ID token is issued by {issuer}, not a configured identity provider",
                                          issuer=issuer)
        try:
            try:
                decoded = jwt.decode(token, await self._keyset(issuer), algorithms=ALGORITHMS)
            except ValueError:  # joserfc: no key of the set has the token's kid; maybe a rotation
                decoded = jwt.decode(token, await self._keyset(issuer, refresh=True), algorithms=ALGORITHMS)
        except BadSignatureError as exc:
            raise ActorSignatureError("the ID token's signature does not verify with its issuer's keys",
                                      issuer=issuer) from exc
        except (JoseError, ValueError) as exc:
            raise ActorSignatureError(f"the ID token cannot be verified with its issuer's keys ({exc})",
                                      issuer=issuer) from exc
        now = int(self.clock())
        try:
            jwt.JWTClaimsRegistry(
                now=now, leeway=self.leeway, iss={"essential": True, "value": decoded.claims.get("iss")},
                aud={"essential": True, "value": self.audience}, exp={"essential": True},
                sub={"essential": True},
            ).validate(decoded.claims)
        except ExpiredTokenError as exc:
            raise ExpiredActorTokenError("the ID token has expired", issuer=issuer) from exc
        except InvalidClaimError as exc:
            if exc.claim in ("nbf", "iat"):
                raise ExpiredActorTokenError(f"the ID token is not valid yet ({exc.claim})", issuer=issuer) from exc
            raise ActorClaimsError(f"the ID token's {exc.claim} is not what this bus accepts", issuer=issuer,
                                   claim=exc.claim) from exc
        except JoseError as exc:
            raise ActorClaimsError(f"the ID token's claims are refused: {exc.error}", issuer=issuer) from exc
        iat = decoded.claims.get("iat")
        if isinstance(iat, (int, float)) and iat > now + self.leeway:  # joserfc checks iat's type only
            raise ExpiredActorTokenError("the ID token is not valid yet (iat)", issuer=issuer)
        return Actor.from_claims(decoded.claims, token, role=role)


async def actor_from_id_token(token: str, issuers: Sequence[str], audience: str, *, role: str | None = None) -> Actor:
    """Verify ``token`` (one-off: no key cache kept) and return its actor; see :class:`ActorVerifier`."""
    return await ActorVerifier(issuers, audience).verify(token, role=role)
