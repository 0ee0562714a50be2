"""Topics as code: every topic of the bus with its partitions, retention and compaction.

Family topics keep events forever (they are the legal record auditors replay) and stamp
records with the broker's clock (``LogAppendTime``), so a retired key cannot back-date a new
message. Reference topics, the catalog and the processors' changelogs are compacted: the
latest value per key is the state. :func:`ensure_topics` creates what is missing and reports
drift in what exists; it never deletes or shrinks anything.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Iterable, Mapping
from typing import Literal

from ._settings import BusSettings

__all__ = [
    "FAMILIES",
    "TopicSpec",
    "describe_topics",
    "ensure_topics",
    "topic_for_schema",
    "topic_map",
]

FAMILIES = ("acts", "procurement", "invoices", "accounting", "archives")
FOREVER = -1
DAY_MS = 24 * 3600 * 1000


@dataclasses.dataclass(frozen=True, slots=True)
class TopicSpec:
    """One topic and the configuration the bus expects of it."""

    key: str  # logical name used in code: "invoices", "reference.companies", "deadletter"...
    name: str  # real topic name (with the settings' prefix)
    partitions: int
    replication: int
    cleanup_policy: Literal["delete", "compact"]
    retention_ms: int
    min_insync_replicas: int
    timestamp_type: Literal["CreateTime", "LogAppendTime"] = "LogAppendTime"
    max_message_bytes: int = 1024 * 1024
    purpose: str = ""
    #: SIRENs every addressed event of this flow is also encrypted to (BUS_RECIPIENT_POLICY), e.g. the archive service.
    extra_recipients: tuple[str, ...] = ()

    def configs(self) -> dict[str, str]:
        """The topic-level configuration as Kafka expects it."""
        return {
            "cleanup.policy": self.cleanup_policy,
            "retention.ms": str(self.retention_ms),
            "min.insync.replicas": str(self.min_insync_replicas),
            "message.timestamp.type": self.timestamp_type,
            "max.message.bytes": str(self.max_message_bytes),
        }


def topic_map(settings: BusSettings) -> dict[str, TopicSpec]:
    """Every topic of the bus, keyed by logical name."""
    rf, isr, prefix = settings.replication_factor, min(settings.min_insync_replicas, settings.replication_factor), settings.topic_prefix

    def spec(key: str, partitions: int, policy: Literal["delete", "compact"], retention: int, purpose: str,
             timestamp: Literal["CreateTime", "LogAppendTime"] = "LogAppendTime") -> TopicSpec:
        return TopicSpec(key, f"{prefix}dcant.{key}", partitions, rf, policy, retention, isr, timestamp, purpose=purpose)

    topics = [dataclasses.replace(spec(f, 6, "delete", FOREVER, f"pivot events of the {f} family"),
                                  extra_recipients=settings.recipient_policy.get(f, ())) for f in FAMILIES]
    topics += [
        spec("ingress.raw", 6, "delete", 7 * DAY_MS, "native documents awaiting adaptation (claim checks for large ones)"),
        spec("reference.companies", 6, "compact", FOREVER, "SIRENE companies by SIRET/SIREN"),
        spec("reference.attestations", 6, "compact", FOREVER, "URSSAF / DGFiP attestations by company"),
        # Append-only, not compacted: the key directory's whole history (bus._directory).
        spec("reference.administrations", 1, "delete", FOREVER,
             "key directory: registrations, the authority's approvals and revocations, its keys"),
        # Compacted: the latest record per profile version and per approval is the bank.
        spec("reference.profiles", 1, "compact", FOREVER,
             "archiving profile bank: SEDA RelaxNG profiles by id and version, archive services' approvals"),
        spec("notifications", 6, "delete", FOREVER,
             "explicit requests to an administration: documents to supply, deadlines, anomalies"),
        spec("barometer", 3, "compact", FOREVER,
             "barometer of digital public services: figures per administration, flow and month"),
        spec("deadletter", 3, "delete", FOREVER, "rejected records, original bytes untouched"),
        spec("catalog", 1, "compact", FOREVER, "Avro schemas by fingerprint"),
        spec("ledger.checkpoints", 1, "delete", FOREVER, "signed Merkle checkpoints of the family topics"),
    ]
    return {t.key: t for t in topics}


_SCHEMA_TOPIC = {
    "fr.dcant.reference.Company": "reference.companies",
    "fr.dcant.reference.Attestation": "reference.attestations",
    "fr.dcant.reference.AdministrationKey": "reference.administrations",
    "fr.dcant.reference.AuthorityKey": "reference.administrations",
    "fr.dcant.reference.EncryptionKey": "reference.administrations",
    "fr.dcant.reference.KeyApproval": "reference.administrations",
    "fr.dcant.reference.KeyRevocation": "reference.administrations",
    "fr.dcant.reference.ArchiveServiceAssignment": "reference.administrations",
    "fr.dcant.reference.ArchivingProfile": "reference.profiles",
    "fr.dcant.reference.ArchivingProfileApproval": "reference.profiles",
    # Not compacted: every request is kept, keyed by the dossier it concerns.
    "fr.dcant.reference.DocumentRequested": "notifications",
    # Compacted: the latest figures of each administration, flow and month.
    "fr.dcant.barometer.Barometer": "barometer",
}


def topic_for_schema(schema_name: str) -> str:
    """Logical topic of events whose payload is ``schema_name`` (``fr.dcant.<family>.X``)."""
    if schema_name in _SCHEMA_TOPIC:
        return _SCHEMA_TOPIC[schema_name]
    family = schema_name.split(".")[2] if schema_name.count(".") >= 3 else ""
    if family not in FAMILIES:
        from ._errors import ConfigurationError

        raise ConfigurationError(f"no topic for schema {schema_name}", hint="pass the topic explicitly")
    return family


async def ensure_topics(admin: object, specs: Iterable[TopicSpec]) -> dict[str, str]:
    """Create missing topics (idempotent). Returns {topic: "created" | "exists" | "drift: ..."}."""
    from aiokafka.admin import NewTopic

    wanted = list(specs)
    existing = set(await admin.list_topics())  # type: ignore[attr-defined]
    missing = [t for t in wanted if t.name not in existing]
    outcome: dict[str, str] = {t.name: "exists" for t in wanted if t.name in existing}
    if missing:
        response = await admin.create_topics(  # type: ignore[attr-defined]
            [NewTopic(t.name, t.partitions, t.replication, topic_configs=t.configs()) for t in missing]
        )
        errors = {name: code for name, code, *_ in getattr(response, "topic_errors", [])}
        for topic in missing:
            code = errors.get(topic.name, 0)
            # 36 = TOPIC_ALREADY_EXISTS: another process created it meanwhile.
            if code not in (0, 36):
                from ._errors import DeliveryError

                raise DeliveryError(f"cannot create topic {topic.name}: Kafka error code {code}", topic=topic.name)
            outcome[topic.name] = "created" if code == 0 else "exists"
        await _wait_for_leaders(admin, [t.name for t in missing])
    live = await describe_topics(admin, [t for t in wanted if outcome[t.name] == "exists"])
    for topic in wanted:
        config = live.get(topic.name)
        if not config:
            continue
        drift = [f"{k}={config.get(k)} (want {v})" for k, v in topic.configs().items() if config.get(k) != v]
        if drift:
            outcome[topic.name] = "drift: " + ", ".join(drift)
    return outcome


async def _wait_for_leaders(admin: object, names: list[str], timeout: float = 30.0) -> None:
    """Return once every partition of ``names`` has a leader, so the first produce succeeds."""
    import asyncio

    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout
    while True:
        metadata = await admin.describe_topics(names)  # type: ignore[attr-defined]
        ready = all(t.get("error_code", 0) == 0 and t.get("partitions")
                    and all(p.get("leader", -1) >= 0 for p in t["partitions"]) for t in metadata)
        if ready:
            return
        if loop.time() > deadline:
            from ._errors import DeliveryError

            raise DeliveryError(f"topics {names} have no leader after {timeout:.0f}s",
                                hint="check the broker with `bus broker status` and `bus broker logs`")
        await asyncio.sleep(0.1)  # polling the cluster's metadata until the condition holds


async def describe_topics(admin: object, specs: Iterable[TopicSpec]) -> dict[str, Mapping[str, str]]:
    """Live configuration of the given topics, plus their partition count (``partitions``)."""
    from aiokafka.admin.config_resource import ConfigResource, ConfigResourceType

    specs = list(specs)
    if not specs:
        return {}
    resources = [ConfigResource(ConfigResourceType.TOPIC, t.name) for t in specs]
    responses = await admin.describe_configs(resources)  # type: ignore[attr-defined]
    out: dict[str, dict[str, str]] = {}
    for response in responses:
        for resource in response.resources:
            _code, _msg, _type, name, entries = resource[:5]
            out[name] = {entry[0]: entry[1] for entry in entries}
    metadata = await admin.describe_topics([t.name for t in specs])  # type: ignore[attr-defined]
    for topic in metadata:
        if topic.get("topic") in out:
            out[topic["topic"]]["partitions"] = str(len(topic.get("partitions", [])))
    return out
