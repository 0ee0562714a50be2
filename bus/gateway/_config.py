"""The gateway's configuration: administrations served, calling clients, issuer, webhooks, limits.

Read from a JSON file (``bus gateway --config FILE``) or built in code. Calling systems
authenticate in two ways, either or both:

- an OAuth2 client-credentials bearer token of ``issuer``, whose client (``client_id`` or ``azp``
  or ``sub`` claim) must be listed in ``clients``;
- mutual TLS with the bus's certificates (:class:`GatewayTls`, ``BUS_GATEWAY_TLS_*``): the client
  is the certificate's name (its CN, as ``bus pki issue`` wrote it), with the policy listed under
  that name in ``clients``; a SIREN's certificate without one acts for that SIREN only, with every
  flow and event type.

With neither the gateway authenticates nobody and only listens on loopback (a developer's machine).
"""

from __future__ import annotations

import json
import re
from pathlib import Path

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator
from pydantic_settings import SettingsConfigDict

from bus._errors import ConfigurationError
from bus._https import ServerTls

__all__ = ["ClientPolicy", "GatewayConfig", "GatewayTls", "Issuer", "Webhook"]

_SIREN = re.compile(r"^\d{9}$")


def _sirens(values: list[str]) -> list[str]:
    bad = [v for v in values if not _SIREN.match(v)]
    if bad:
        raise ValueError(f"not SIRENs: {bad}")
    return values


def _match(patterns: list[str], value: str) -> bool:
    """``*`` allows everything; ``fr.dcant.invoices.*`` a prefix; anything else an exact value."""
    return any(p == "*" or p == value or (p.endswith("*") and value.startswith(p[:-1])) for p in patterns)


class ClientPolicy(BaseModel):
    """What one calling system may do: for which administrations, which flows, which event types."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    administrations: list[str] = Field(description="SIRENs the client acts for")
    submit: list[str] = Field(default_factory=list, description="formats or pivot types it may submit (* = all)")
    read: list[str] = Field(default_factory=list, description="event types it may read (prefix* allowed)")

    _check = field_validator("administrations")(_sirens)

    def may_act_for(self, siren: str) -> bool:
        return siren in self.administrations

    def may_submit(self, flow: str) -> bool:
        return _match(self.submit, flow)

    def may_read(self, event_type: str) -> bool:
        return _match(self.read, event_type)

    @classmethod
    def own(cls, siren: str) -> ClientPolicy:
        """The policy of a SIREN's certificate not listed in ``clients``: that SIREN, everything."""
        return cls(administrations=[siren], submit=["*"], read=["*"])


class GatewayTls(ServerTls):
    """HTTPS with client certificates of the site CA (``BUS_GATEWAY_TLS_CERTFILE``, ``_KEYFILE``,
    ``_KEY_PASSWORD``, ``_CAFILE``): required, or optional when an issuer's tokens are accepted too."""

    model_config = SettingsConfigDict(env_prefix="BUS_GATEWAY_", frozen=True)


class Issuer(BaseModel):
    """The OAuth2 authorisation server whose tokens the gateway accepts."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    issuer: str = Field(description="the tokens' iss claim")
    jwks_uri: str = Field(description="where the issuer's public keys are (JWKS)")
    audience: str = Field(default="dcant-bus-gateway", description="the aud claim the tokens must carry")
    leeway_seconds: int = 30


class Webhook(BaseModel):
    """A receiver called with the events of an administration's inbox (Standard Webhooks signing)."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    administration: str
    url: str
    secret: str = Field(description="whsec_<base64> as Standard Webhooks writes it, or the raw key in base64")
    types: list[str] = Field(default_factory=lambda: ["*"])
    max_attempts: int = 5
    timeout_seconds: float = 5.0
    backoff_seconds: float = 1.0


class GatewayConfig(BaseModel):
    """Everything ``bus gateway`` needs besides the bus settings."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    administrations: list[str] = Field(description="SIRENs whose keys the gateway holds and acts for")
    max_upload_bytes: int | None = Field(default=None, description="default: BUS_MAX_DOCUMENT_BYTES")
    issuer: Issuer | None = None
    clients: dict[str, ClientPolicy] = Field(default_factory=dict)
    webhooks: list[Webhook] = Field(default_factory=list)
    long_poll_max_seconds: float = 30.0

    _check = field_validator("administrations")(_sirens)

    @classmethod
    def load(cls, path: Path) -> GatewayConfig:
        try:
            return cls.model_validate(json.loads(path.read_text(encoding="utf-8")))
        except ValidationError as exc:
            error = exc.errors()[0]
            where = ".".join(str(p) for p in error["loc"]) or "the file"
            raise ConfigurationError(f"gateway configuration {path}: {where}: {error['msg']}",
                                     hint="see `bus gateway --help` for the file's fields") from exc
        except (OSError, json.JSONDecodeError) as exc:
            first = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
            raise ConfigurationError(f"cannot read gateway configuration {path}: {first}",
                                     hint="see `bus gateway --help` for the file's fields") from exc
