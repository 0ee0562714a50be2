"""The contract for other languages: AsyncAPI 3, JSON Schema of every pivot, signing test vectors.

A vendor writing a producer or a verifier in Java, PHP or C# needs three things, all generated
here from the sources of truth (the Avro schemas, the topic table, the envelope code) so that
they cannot drift:

- :func:`asyncapi` — an AsyncAPI 3.0 document: one channel per topic, one message per pivot
  schema (CloudEvents attributes as Kafka headers in binary content mode, the Avro schema as
  payload), a send and a receive operation per channel;
- :func:`json_schema` — the JSON Schema (2020-12) of a pivot's JSON form, as ``bus adapt``
  prints it and the gateway accepts it (dates ISO 8601, timestamps RFC 3339, bytes hex);
- :func:`vector` — a test vector: an event's attributes and payload, its Avro bytes, the exact
  signed bytes, the signature and the key (a fixed Ed25519 seed: deterministic signatures).

:func:`write_contract` writes the three under one folder (``contract/`` in this repository);
:func:`check_contract` regenerates into memory and names the first file that differs.
"""

from __future__ import annotations

import base64
import datetime as dt
import hashlib
import json
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ed25519

from ._actor import Actor
from ._catalog import Catalog, default_catalog, from_json_value
from ._envelope import SIGNED_ATTRIBUTES, Envelope
from ._errors import ConfigurationError
from ._keys import KeyDirectory, PublicKey, SigningKey, _key_id, self_signed
from ._settings import BusSettings
from ._topics import FAMILIES, topic_for_schema, topic_map
from ._wire import Event, Wire

__all__ = ["asyncapi", "check_contract", "json_schema", "vector", "write_contract"]

_PRIMITIVE = {"null": {"type": "null"}, "boolean": {"type": "boolean"}, "int": {"type": "integer"},
              "long": {"type": "integer"}, "float": {"type": "number"}, "double": {"type": "number"},
              "string": {"type": "string"}, "bytes": {"type": "string", "pattern": "^([0-9a-f]{2})*$"}}
_LOGICAL = {"date": {"type": "string", "format": "date"},
            "timestamp-micros": {"type": "string", "format": "date-time"},
            "timestamp-millis": {"type": "string", "format": "date-time"},
            "uuid": {"type": "string", "format": "uuid"}}


def _full_name(node: Mapping[str, Any], namespace: str | None) -> str:
    name = node["name"]
    ns = node.get("namespace", namespace)
    return name if "." in name or not ns else f"{ns}.{name}"


def _js(node: Any, namespace: str | None, defs: dict[str, Any]) -> dict[str, Any]:
    if isinstance(node, str):
        if node in _PRIMITIVE:
            return dict(_PRIMITIVE[node])
        full = node if "." in node or not namespace else f"{namespace}.{node}"
        return {"$ref": f"#/$defs/{full if full in defs else node}"}
    if isinstance(node, list):
        return {"anyOf": [_js(branch, namespace, defs) for branch in node]}
    kind = node["type"]
    if node.get("logicalType") in _LOGICAL:
        return dict(_LOGICAL[node["logicalType"]])
    doc = {"description": node["doc"]} if node.get("doc") else {}
    if kind == "record":
        full = _full_name(node, namespace)
        defs[full] = {}  # reserved before the fields: a recursive record refers to itself
        ns = full.rsplit(".", 1)[0] if "." in full else None
        props = {f["name"]: {**_js(f["type"], ns, defs), **({"description": f["doc"]} if f.get("doc") else {})}
                 for f in node["fields"]}
        defs[full] = {"type": "object", **doc, "properties": props, "required": [f["name"] for f in node["fields"]],
                      "additionalProperties": False}
        return {"$ref": f"#/$defs/{full}"}
    if kind == "enum":
        full = _full_name(node, namespace)
        defs[full] = {"type": "string", **doc, "enum": list(node["symbols"])}
        return {"$ref": f"#/$defs/{full}"}
    if kind == "fixed":
        return {"type": "string", "pattern": f"^[0-9a-f]{{{2 * node['size']}}}$"}
    if kind == "array":
        return {"type": "array", "items": _js(node["items"], namespace, defs)}
    if kind == "map":
        return {"type": "object", "additionalProperties": _js(node["values"], namespace, defs)}
    return _js(kind, namespace, defs)


def json_schema(raw: Mapping[str, Any]) -> dict[str, Any]:
    """The JSON Schema 2020-12 of the JSON form of records of Avro schema ``raw``."""
    defs: dict[str, Any] = {}
    root = _js(dict(raw), raw.get("namespace"), defs)
    name = root["$ref"].rsplit("/", 1)[-1]
    return {"$schema": "https://json-schema.org/draft/2020-12/schema", "$id": f"urn:dcant-bus:jsonschema:{name}",
            "title": name, **root, "$defs": defs}


_HEADER_DOC = {
    "ce_specversion": "CloudEvents spec version, always 1.0", "ce_id": "event id (UUIDv7)",
    "ce_source": "urn:siren:<SIREN>:<system> of the producer", "ce_type": "event type (fr.dcant.<family>.<Event>)",
    "ce_subject": "dossier id, also the record key", "ce_time": "event time, RFC 3339 UTC with microseconds",
    "content-type": "application/avro", "ce_dataschema": "urn:avro:<name>:v<version>:crc64:<fingerprint>",
    "ce_correlationid": "id of the exchange the event belongs to", "ce_causationid": "id of the event that caused it",
    "ce_sigkeyid": "<SIREN>:<key fingerprint> of the signing key",
    "ce_sig": "signature of the signed bytes, base64url without padding",
    "ce_actor": "the agent who acted (optional): canonical JSON (sorted keys, no blanks) of the identity provider's "
                "verified claims (iss, sub, uid, siret, email, idp_id, acr, amr, auth_time), token_sha256 (SHA-256 of "
                "the ID token, never the token) and role; signed (signed bytes v3, see the actor vector)",
}


def asyncapi(settings: BusSettings | None = None, catalog: Catalog | None = None) -> dict[str, Any]:
    """The AsyncAPI 3.0 document of every topic and pivot message."""
    settings = settings or BusSettings(topic_prefix="")
    catalog = catalog or default_catalog()
    topics = topic_map(settings)
    required = ["ce_specversion", "ce_id", "ce_source", "ce_type", "ce_subject", "ce_time", "ce_dataschema",
                "ce_sigkeyid", "ce_sig"]
    headers = {"type": "object", "required": required,
               "properties": {h: {"type": "string", "description": d} for h, d in _HEADER_DOC.items()}}
    messages: dict[str, Any] = {}
    by_topic: dict[str, list[str]] = {key: [] for key in topics}
    for name in catalog.names():
        schema = catalog.latest(name)
        try:
            key = topic_for_schema(name)
        except ConfigurationError:
            key = "ingress.raw" if name.startswith("fr.dcant.ingress.") else None
        privacy = name.startswith("fr.dcant.privacy.")  # an erasure goes on the family topic of its dossier
        if key is None and not privacy:
            continue
        message_id = name.replace(".", "_")
        messages[message_id] = {
            "name": name, "title": name.rsplit(".", 1)[-1], "summary": str(schema.raw.get("doc", ""))[:300],
            "contentType": "application/avro", "headers": {"$ref": "#/components/schemas/CloudEventsHeaders"},
            "bindings": {"kafka": {"key": {"type": "string", "description": "the dossier id (ce_subject)"}}},
            "payload": {"schemaFormat": "application/vnd.apache.avro+json;version=1.11.0", "schema": schema.raw}}
        for family in (FAMILIES if privacy else (key,)):
            by_topic[family].append(message_id)  # type: ignore[index]
    channels: dict[str, Any] = {}
    operations: dict[str, Any] = {}
    for key, spec in topics.items():
        channel = key.replace(".", "_")
        channels[channel] = {"address": spec.name, "description": spec.purpose,
                             "messages": {m: {"$ref": f"#/components/messages/{m}"} for m in by_topic[key]},
                             "bindings": {"kafka": {"topic": spec.name, "partitions": spec.partitions,
                                                    "topicConfiguration": {"cleanup.policy": [spec.cleanup_policy], "retention.ms": spec.retention_ms}}}}
        for action in ("send", "receive"):
            operations[f"{action}_{channel}"] = {"action": action, "channel": {"$ref": f"#/channels/{channel}"}}
    return {"asyncapi": "3.0.0",
            "info": {"title": "dcant-bus", "version": "1",
                     "description": "Signed CloudEvents (Kafka binary content mode) with Avro single-object payloads. "
                                    "Signed bytes: see the test vectors; DESIGN §3. A payload whose schema fields marked "
                                    "\"personal\": true hold data may travel as a personal value (magic DC 5E 02, or DC 5E 04 "
                                    "naming its dossier when that is not ce_subject; the fields AES-256-GCM-encrypted "
                                    "under the dossier's key, then the payload with "
                                    "them blanked: bus/_erasure.py); the signature covers it as it travels."},
            "defaultContentType": "application/avro", "channels": channels, "operations": operations,
            "components": {"messages": messages, "schemas": {"CloudEventsHeaders": headers}}}


def _seeded_key(siren: str, seed: bytes, valid_from: dt.datetime) -> SigningKey:
    private = ed25519.Ed25519PrivateKey.from_private_bytes(seed)
    der = private.public_key().public_bytes(serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo)
    return self_signed(PublicKey(_key_id(siren, der), siren, "test vectors", "ED25519", der, valid_from, None,
                                "EVENTS"), private)


def vector(spec: Mapping[str, Any], catalog: Catalog | None = None) -> dict[str, Any]:
    """The test vector of ``spec``: ``{name, seed, siren, attributes{id, source, time, ...}, pivot{...}}``."""
    catalog = catalog or default_catalog()
    seed = bytes.fromhex(spec["seed"])
    attrs = spec["attributes"]
    time = dt.datetime.fromisoformat(attrs["time"].replace("Z", "+00:00"))
    key = _seeded_key(spec["siren"], seed, time - dt.timedelta(days=1))
    pivot = spec["pivot"]
    data = from_json_value(catalog.latest(pivot["schema"]).parsed, pivot["data"])
    event = Event(type=pivot["type"], subject=pivot["subject"], schema=pivot["schema"], data=data, id=attrs["id"],
                  time=time, source=attrs["source"], correlationid=attrs.get("correlationid"),
                  causationid=attrs.get("causationid"),
                  actor=Actor(**{**spec["actor"], "amr": tuple(spec["actor"].get("amr", ()))}) if "actor" in spec else None)
    record = Wire(catalog, KeyDirectory([key.public]), key).seal(event)
    envelope = Envelope.from_headers(record.headers)
    payload = record.value or b""
    signed = envelope.signing_bytes(payload)
    return {
        "name": spec["name"],
        "attributes": {n: getattr(envelope, n) for n in (*SIGNED_ATTRIBUTES, "actor") if getattr(envelope, n) is not None},
        "headers": [[h, v.decode()] for h, v in record.headers],
        "key": record.key.decode() if record.key else None,
        "pivot": pivot,
        "payload_hex": payload.hex(),
        "signed_bytes_hex": signed.hex(),
        "signed_bytes_sha256": hashlib.sha256(signed).hexdigest(),
        "signature_b64url": base64.urlsafe_b64encode(envelope.sig or b"").rstrip(b"=").decode(),
        "signing_key": {"key_id": key.key_id, "algorithm": "ED25519", "private_seed_hex": seed.hex(),
                        "public_key_raw_hex": ed25519.Ed25519PrivateKey.from_private_bytes(seed).public_key()
                        .public_bytes(serialization.Encoding.Raw, serialization.PublicFormat.Raw).hex(),
                        "public_key_der_hex": key.public.public_der.hex()},
    }


def _render(value: Any) -> str:
    return json.dumps(value, indent=1, ensure_ascii=False, sort_keys=True) + "\n"


def contract_files(root: Path, catalog: Catalog | None = None) -> dict[Path, str]:
    """Every generated file under ``root`` and its text (vectors from ``root/vectors/inputs``)."""
    catalog = catalog or default_catalog()
    files = {root / "asyncapi.json": _render(asyncapi(catalog=catalog))}
    for name in catalog.names():
        files[root / "jsonschema" / f"{name}.json"] = _render(json_schema(catalog.latest(name).raw))
    for source in sorted((root / "vectors" / "inputs").glob("*.json")):
        spec = json.loads(source.read_text(encoding="utf-8"))
        files[root / "vectors" / f"{spec['name']}.json"] = _render(vector(spec, catalog))
    return files


def write_contract(root: Path) -> list[Path]:
    """Write the contract under ``root``; returns the files written."""
    files = contract_files(root)
    for path, text in files.items():
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text, encoding="utf-8")
    return sorted(files)


def check_contract(root: Path) -> list[Path]:
    """The files under ``root`` that differ from what the sources generate (missing ones included)."""
    generated = contract_files(root)
    stale = [p for p, text in generated.items() if not p.is_file() or p.read_text(encoding="utf-8") != text]
    expected = set(generated)
    extra = [p for folder in (root / "jsonschema", root / "vectors") if folder.is_dir()
             for p in folder.glob("*.json") if p not in expected]
    return sorted(stale + extra)
