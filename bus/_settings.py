"""Settings of the bus: one frozen object, read from ``BUS_*`` environment variables.

Explicit arguments beat the environment: ``BusSettings(bootstrap_servers="k1:9092")``
overrides ``BUS_BOOTSTRAP_SERVERS``. Secrets are :class:`pydantic.SecretStr` and never
printed (``bus config`` shows them masked).
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Annotated, Any, Literal

from pydantic import Field, SecretStr, field_validator
from pydantic_settings import BaseSettings, NoDecode, SettingsConfigDict

__all__ = ["BusSettings", "default_cache_dir", "default_state_dir"]


def default_state_dir() -> Path:
    """Where the embedded broker, keys and content store live: ``$XDG_STATE_HOME/dcant-bus``."""
    base = os.environ.get("XDG_STATE_HOME") or Path.home() / ".local" / "state"
    return Path(base) / "dcant-bus"


def default_cache_dir() -> Path:
    """Where the Kafka jars are cached: ``$XDG_CACHE_HOME/dcant-bus``."""
    base = os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache"
    return Path(base) / "dcant-bus"


class BusSettings(BaseSettings):
    """Every knob of the bus. Frozen: build a new one with ``model_copy(update=...)``."""

    model_config = SettingsConfigDict(env_prefix="BUS_", frozen=True, extra="ignore")

    # Kafka
    bootstrap_servers: str | None = Field(
        default=None,
        description="an existing cluster (host:port,...); unset means the embedded broker",
    )
    broker_port: int = Field(default=19092, description="port of the embedded broker")
    broker_controller_port: int = Field(default=19093, description="KRaft controller port of the embedded broker")
    kafka_version: str = Field(default="4.1.1", description="Apache Kafka version the embedded broker runs")
    broker_secure: bool = Field(
        default=False, description="embedded broker with mutual TLS, SCRAM over TLS and ACLs (bus broker start --secure)")
    broker_sasl_port: int = Field(default=19094, description="SASL_SSL (SCRAM) port of the secure embedded broker")
    security_protocol: Literal["PLAINTEXT", "SSL", "SASL_PLAINTEXT", "SASL_SSL"] = Field(
        default="PLAINTEXT", description="how clients talk to Kafka (SSL: mutual TLS; SASL_SSL: SCRAM over TLS)")
    ssl_cafile: Path | None = Field(default=None, description="CA certificate (PEM) the broker's certificate must chain to")
    ssl_certfile: Path | None = Field(default=None, description="this client's certificate (PEM), from `bus pki issue`")
    ssl_keyfile: Path | None = Field(default=None, description="this client's private key (PEM)")
    ssl_key_password: SecretStr | None = Field(
        default=None, description="decrypts BUS_SSL_KEYFILE; default BUS_KEY_PASSPHRASE")
    sasl_mechanism: Literal["PLAIN", "SCRAM-SHA-256", "SCRAM-SHA-512"] | None = None
    sasl_username: str | None = None
    sasl_password: SecretStr | None = None
    replication_factor: int = Field(default=1, description="replication of created topics (3 in production)")
    min_insync_replicas: int = Field(default=1, description="min.insync.replicas of created topics (2 in production)")
    topic_prefix: str = Field(default="", description="prefix of every topic name (tenancy, tests)")

    # Places
    state_dir: Path = Field(default_factory=default_state_dir, description="broker data, keys, content store")
    cache_dir: Path = Field(default_factory=default_cache_dir,
                            description="what Maven resolves: the Kafka jars, the official EN 16931 rules and UBL/CII XSDs")
    schema_dir: Path | None = Field(default=None, description="official XSDs (the corpus layout)")
    keys_dir: Path | None = Field(default=None, description="private keys; default STATE_DIR/keys")
    key_passphrase: SecretStr | None = Field(default=None, description="encrypts the private keys at rest (PKCS#8)")
    content_store: str | None = Field(default=None, description="claim-check store URI; default STATE_DIR/content")

    # Identity of this producer
    source: str = Field(default="urn:siren:000000000:bus", description="CloudEvents source of what this process publishes")
    key_id: str | None = Field(default=None, description="signing key id; default the newest key of the source's SIREN")

    # Trust (bus._authority)
    trust_anchor: str | None = Field(
        default=None, description="the registration authority's key: its SHA-256 fingerprint or its PEM file; "
        "unset means self-registered keys are trusted (development only)")
    ra_dir: Path | None = Field(default=None, description="the registration authority's private keys; default STATE_DIR/ra")

    # Who acted (bus._actor): the identity providers whose ID tokens name the agent behind an event
    oidc_issuers: Annotated[tuple[str, ...], NoDecode] = Field(
        default=(), description="OpenID Connect issuers trusted to assert who acted (comma-separated URLs, "
        "e.g. ProConnect's); empty: events cannot name an actor")
    oidc_audience: str | None = Field(
        default=None, description="this bus's client id at those issuers: the `aud` an agent's ID token must carry")

    # Who may read (bus._topics.recipient_policy): per flow, recipients added to every addressed event
    recipient_policy: Annotated[dict[str, tuple[str, ...]], NoDecode] = Field(
        default_factory=dict, description="per flow, the SIRENs every addressed event of that flow is also encrypted "
        "to, e.g. `archives=130000001;accounting=110000002,130000003` (an archive service, a control body)")

    @field_validator("recipient_policy", mode="before")
    @classmethod
    def _policy(cls, value: Any) -> Any:
        if not isinstance(value, str):
            return value
        from ._topics import FAMILIES

        policy: dict[str, tuple[str, ...]] = {}
        for part in filter(None, (p.strip() for p in value.split(";"))):
            flow, _, sirens = part.partition("=")
            flow, listed = flow.strip(), tuple(x.strip() for x in sirens.split(",") if x.strip())
            if flow not in FAMILIES:
                raise ValueError(f"recipient policy names flow {flow!r}; the flows are {', '.join(FAMILIES)}")
            bad = [x for x in listed if not (len(x) == 9 and x.isdigit())]
            if not listed or bad:
                raise ValueError(f"recipient policy of {flow} needs SIRENs of 9 digits, got {sirens.strip()!r}")
            policy[flow] = tuple(sorted(set(listed)))
        return policy

    @field_validator("oidc_issuers", mode="before")
    @classmethod
    def _issuers(cls, value: Any) -> Any:
        return tuple(u.strip() for u in value.split(",") if u.strip()) if isinstance(value, str) else value

    # Signatures inside documents (PES_Aller bordereaux): always verified when present
    pes_trust_ca: Path | None = Field(
        default=None, description="PEM file of the CAs trusted to issue PES_Aller signers' certificates; unset: a "
        "signature is checked against the certificate it carries, and the pivot's warnings say so")
    pes_require_signature: bool = Field(default=False, description="refuse a PES_Aller whose bordereaux are not signed")

    # Archiving (processors.archiving, bus._profiles)
    archive_profile_bank: bool = Field(
        default=False, description="the archiving core sends a transfer only if it follows the RelaxNG profile "
        "version the archive service approved on the profile bank, to the archive service the directory assigns "
        "to the collectivity; off: to the JSON profile's archival agency, unchecked")

    # Personal data
    pseudonymisation_secret: SecretStr | None = Field(
        default=None, description="secret from which each collectivity's pseudonymisation key is derived")

    # Limits
    max_event_bytes: int = Field(default=256 * 1024, description="largest event value; larger goes by claim check")
    max_document_bytes: int = Field(default=128 * 1024 * 1024, description="largest native document parsed")

    # Client behaviour
    consumer_group: str = "dcant-bus"
    fetch_max_bytes: int = Field(
        default=1024 * 1024, ge=1024,
        description="most bytes a Subscriber's fetch asks for (per partition and in all); under a fetch quota keep "
                    "it below 10 s of the quota: the broker never serves a larger answer, it throttles it empty")
    max_retries: int = 3
    retry_backoff_ms: int = 200

    @property
    def embedded(self) -> bool:
        """True when no external cluster is configured."""
        return not self.bootstrap_servers

    @property
    def bootstrap(self) -> str:
        """The bootstrap servers to connect to (the embedded broker's when none is set)."""
        return self.bootstrap_servers or f"127.0.0.1:{self.broker_port}"

    @property
    def resolved_keys_dir(self) -> Path:
        return self.keys_dir or self.state_dir / "keys"

    @property
    def resolved_ra_dir(self) -> Path:
        return self.ra_dir or self.state_dir / "ra"

    @property
    def resolved_content_store(self) -> str:
        return self.content_store or (self.state_dir / "content").as_uri()

    @property
    def resolved_pki_dir(self) -> Path:
        """The site's certificate authority and the certificates it issued (``bus pki``)."""
        return self.state_dir / "pki"

    def kafka_security(self) -> dict[str, object]:
        """aiokafka keyword arguments for the configured security protocol."""
        out: dict[str, object] = {"security_protocol": self.security_protocol}
        if self.sasl_mechanism:
            out["sasl_mechanism"] = self.sasl_mechanism
            out["sasl_plain_username"] = self.sasl_username
            out["sasl_plain_password"] = self.sasl_password.get_secret_value() if self.sasl_password else None
        return out
