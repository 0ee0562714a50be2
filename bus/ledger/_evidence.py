"""Evidence bundles: a dossier's events with everything needed to verify them offline, in one zip.

A bundle holds, as plain files an auditor can read::

    manifest.json                   format, dossier, creation time, SHA-256 of every other member
    events/NNNN.json                one event: exact key/value/header bytes (base64), topic, partition,
                                    offset, timestamp, leaf position, inclusion proof at its anchor
                                    checkpoint, consistency proof from there to the latest checkpoint
    checkpoints/<sha256>.note       the signed checkpoints (C2SP signed notes) those proofs refer to
    keys/<key id>.json              producer, ledger and witness public keys with validity periods
    schemas/<fingerprint>.json      the writer (and reader) schemas, as on the catalog topic
    timeline.html                   a readable timeline (every value HTML-escaped)

and, as the zip comment, ``dcant-bus-evidence sha256=<SHA-256 of manifest.json>``. The zip is
written canonically (stored, fixed dates and attributes, fixed order), so
:func:`verify_bundle` checks it byte for byte: it rebuilds the zip from its members and
compares, checks the manifest chain, then every key's proof of possession, every event's
signature and payload (:meth:`Wire.open`, writer schema from the bundle), every checkpoint's
signature by a ``LEDGER`` key valid at its time, each inclusion and consistency proof, and
that ``timeline.html`` is the rendering of the verified events. Any flipped byte fails with
the reason. Reading is bounded (size, member count, names: no paths outside the bundle) and
never touches the disk. No broker is needed: only this package.
"""

from __future__ import annotations

import base64
import datetime as dt
import hashlib
import html
import io
import json
import re
import zipfile
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from bus._authority import Trust, TrustAnchor
from bus._catalog import Catalog, Schema
from bus._directory import learn_record
from bus._envelope import Envelope
from bus._errors import BusError, UntrustedKeyError
from bus._keys import KeyDirectory, PublicKey
from bus._settings import BusSettings
from bus._topics import topic_map
from bus._wire import Record, Wire
from bus.ledger._checkpoint import Checkpoint, verify
from bus.ledger._merkle import LedgerError, MerkleTree, ProofError, verify_consistency, verify_inclusion
from bus.ledger._processor import checkpoint_verifier, record_leaf
from bus.ledger._replay import Opened, open_records
from bus.ledger._trace import with_erasures

__all__ = ["BundleReport", "EvidenceEvent", "build_bundle", "collect_evidence", "render_timeline", "verify_bundle"]

FORMAT = "dcant-bus-evidence/1"
MAX_BUNDLE_BYTES = 256 * 1024 * 1024
MAX_MEMBERS = 20_000
_COMMENT = b"dcant-bus-evidence sha256="
_NAME = re.compile(r"^(manifest\.json|timeline\.html|events/\d{4,6}\.json|checkpoints/[0-9a-f]{64}\.note|"
                   r"keys/[0-9A-Za-z_-]{1,80}\.json|schemas/[0-9a-f]{16}\.json|directory/\d{4,6}\.json)$")
_DATE = (1980, 1, 1, 0, 0, 0)
_UNTRUSTED = {c.__name__ for c in (UntrustedKeyError, *UntrustedKeyError.__subclasses__())}


@dataclass(frozen=True, slots=True)
class EvidenceEvent:
    """One event with its place in its partition's log and the proofs that anchor it."""

    record: Record
    position: int
    anchor: Checkpoint
    inclusion: Sequence[bytes]
    latest: Checkpoint
    consistency: Sequence[bytes]


@dataclass(frozen=True, slots=True)
class BundleReport:
    """What a verified bundle vouches for."""

    dossier: str
    created: str
    events: list[Opened]
    checkpoints: int
    keys: int


def _b64(data: bytes | None) -> str | None:
    return None if data is None else base64.b64encode(data).decode("ascii")


def _unb64(text: str | None, what: str) -> bytes | None:
    if text is None:
        return None
    try:
        return base64.b64decode(text.encode("ascii"), validate=True)
    except (ValueError, UnicodeEncodeError) as exc:
        raise LedgerError(f"{what} is not base64", member=what) from exc


def _json(value: Any) -> bytes:
    return json.dumps(value, ensure_ascii=False, sort_keys=True, indent=1).encode("utf-8") + b"\n"


def _note_name(cp: Checkpoint) -> str:
    return f"checkpoints/{hashlib.sha256(cp.to_bytes()).hexdigest()}.note"


def _key_name(key_id: str) -> str:
    return "keys/" + re.sub(r"[^0-9A-Za-z_-]", "_", key_id) + ".json"


def _key_json(key: PublicKey) -> dict[str, Any]:
    return {"key_id": key.key_id, "siren": key.siren, "owner": key.owner, "algorithm": key.algorithm,
            "purpose": key.purpose, "public_key": _b64(key.public_der),
            "valid_from": key.valid_from.isoformat(),
            "valid_until": key.valid_until.isoformat() if key.valid_until else None,
            "proof_of_possession": _b64(key.proof_of_possession)}


def _key_of(doc: dict[str, Any]) -> PublicKey:
    return PublicKey(key_id=doc["key_id"], siren=doc["siren"], owner=doc["owner"], algorithm=doc["algorithm"],
                     public_der=_unb64(doc["public_key"], "public key") or b"",
                     valid_from=dt.datetime.fromisoformat(doc["valid_from"]),
                     valid_until=dt.datetime.fromisoformat(doc["valid_until"]) if doc["valid_until"] else None,
                     purpose=doc["purpose"], proof_of_possession=_unb64(doc["proof_of_possession"], "proof") or b"")


def _event_json(e: EvidenceEvent) -> dict[str, Any]:
    r = e.record
    return {**_record_json(r), "position": e.position, "anchor": _note_name(e.anchor),
            "inclusion": [h.hex() for h in e.inclusion], "latest": _note_name(e.latest), "consistency": [h.hex() for h in e.consistency]}


def render_timeline(dossier: str, events: Sequence[Opened]) -> bytes:
    """The readable timeline of verified events; every value is HTML-escaped."""
    esc = html.escape
    rows = []
    for e in with_erasures(events):
        data = esc(json.dumps(e.data, ensure_ascii=False, sort_keys=True))
        rows.append(f"<tr><td>{esc(e.time or '')}</td><td>{esc(e.type or '')}</td><td>{esc(e.subject or '')}</td>"
                    f"<td>{esc(e.source or '')}</td><td>{esc(f'{e.topic}[{e.partition}]@{e.offset}')}</td>"
                    f"<td>{esc(e.sigkeyid or '')}</td><td><code>{data}</code></td></tr>")
    page = (f"<!DOCTYPE html>\n<html lang=\"fr\"><head><meta charset=\"utf-8\"><title>Dossier {esc(dossier)}</title>"
            "</head><body>\n"
            f"<h1>Dossier {esc(dossier)}</h1>\n<p>{len(events)} verified event(s).</p>\n<table>\n"
            "<tr><th>time</th><th>type</th><th>dossier</th><th>producer</th><th>record</th><th>signed by</th>"
            "<th>data</th></tr>\n" + "\n".join(rows) + "\n</table></body></html>\n")
    return page.encode("utf-8")


def _zip(members: Sequence[tuple[str, bytes]], comment: bytes) -> bytes:
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w", compression=zipfile.ZIP_STORED) as zf:
        for name, data in members:
            info = zipfile.ZipInfo(name, date_time=_DATE)
            info.compress_type = zipfile.ZIP_STORED
            info.create_system = 3
            info.external_attr = 0o644 << 16
            zf.writestr(info, data)
        zf.comment = comment
    return buf.getvalue()


def _record_json(r: Record) -> dict[str, Any]:
    return {"topic": r.topic, "partition": r.partition, "offset": r.offset, "timestamp_ms": r.timestamp_ms,
            "key": _b64(r.key), "value": _b64(r.value), "headers": [[k, _b64(v)] for k, v in r.headers]}


def _record_of(doc: dict[str, Any], name: str) -> Record:
    headers = tuple((str(k), _unb64(v, name)) for k, v in doc["headers"])
    return Record(_unb64(doc["key"], name), _unb64(doc["value"], name), headers,  # type: ignore[arg-type]
                  doc["topic"], int(doc["partition"]), int(doc["offset"]), int(doc["timestamp_ms"]))


def build_bundle(dossier: str, events: Sequence[EvidenceEvent], keys: Sequence[PublicKey],
                 schemas: Sequence[Schema], *, created: dt.datetime, catalog: Catalog,
                 directory_records: Sequence[Record] = ()) -> bytes:
    """The bundle's bytes (pure): ``events`` in timeline order, the keys and schemas they need.

    ``directory_records`` are the directory topic's records about those keys (registrations,
    the authority's approvals and revocations, its keys), exact bytes: what lets a verifier
    holding the trust anchor check that every key chains to it.
    """
    wire = Wire(catalog, KeyDirectory(keys))
    opened = open_records(wire, [e.record for e in events])
    members: dict[str, bytes] = {}
    for i, record in enumerate(directory_records):
        members[f"directory/{i:04d}.json"] = _json(_record_json(record))
    for i, e in enumerate(events):
        members[f"events/{i:04d}.json"] = _json(_event_json(e))
        for cp in (e.anchor, e.latest):
            members[_note_name(cp)] = cp.to_bytes()
    for key in keys:
        members[_key_name(key.key_id)] = _json(_key_json(key))
    for schema in schemas:
        members[f"schemas/{schema.fingerprint.hex()}.json"] = schema.to_catalog_record()
    members["timeline.html"] = render_timeline(dossier, opened)
    manifest = _json({"format": FORMAT, "dossier": dossier, "created": created.isoformat(),
                      "events": [f"events/{i:04d}.json" for i in range(len(events))],
                      "members": {n: hashlib.sha256(d).hexdigest() for n, d in sorted(members.items())}})
    ordered = [("manifest.json", manifest), *sorted(members.items())]
    return _zip(ordered, _COMMENT + hashlib.sha256(manifest).hexdigest().encode())


def _read_members(data: bytes) -> tuple[list[tuple[str, bytes]], bytes]:
    if len(data) > MAX_BUNDLE_BYTES:
        raise LedgerError("bundle is larger than the bound", size=len(data), bound=MAX_BUNDLE_BYTES)
    try:
        with zipfile.ZipFile(io.BytesIO(data)) as zf:
            infos = zf.infolist()
            if len(infos) > MAX_MEMBERS:
                raise LedgerError("bundle has too many members", members=len(infos))
            members, seen, total = [], set(), 0
            for info in infos:
                if not _NAME.match(info.filename) or info.filename in seen:
                    raise LedgerError("unexpected or repeated member name (possible path traversal)",
                                      member=repr(info.filename))
                if info.compress_type != zipfile.ZIP_STORED or info.flag_bits & 0x1:
                    raise LedgerError("bundle members must be stored, unencrypted", member=info.filename)
                total += info.file_size
                if total > MAX_BUNDLE_BYTES:
                    raise LedgerError("bundle members exceed the size bound", member=info.filename)
                seen.add(info.filename)
                members.append((info.filename, zf.read(info)))  # checks the CRC-32
            return members, zf.comment
    except (zipfile.BadZipFile, zipfile.LargeZipFile, OSError, ValueError, EOFError, NotImplementedError) as exc:
        raise LedgerError(f"not a readable zip bundle: {exc}") from exc


def _parse(raw: bytes, name: str) -> Any:
    try:
        return json.loads(raw.decode("utf-8"))
    except (UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise LedgerError(f"{name} is not JSON", member=name) from exc


def verify_bundle(data: bytes, *, anchor: TrustAnchor | None = None) -> BundleReport:
    """Verify a bundle offline; raise a :class:`~bus.BusError` saying what fails, or return what it proves.

    With ``anchor``, every key must chain to it through the bundle's directory records (an
    approval by the registration authority covering each event's and checkpoint's time): a
    bundle made with keys of its own is self-consistent but fails here.
    """
    members, comment = _read_members(data)
    if _zip(members, comment) != data:
        raise LedgerError("bundle bytes are not the canonical zip of its members (altered zip structure)")
    files = dict(members)
    manifest_raw = files.get("manifest.json", b"")
    if comment != _COMMENT + hashlib.sha256(manifest_raw).hexdigest().encode():
        raise LedgerError("the zip comment does not name the manifest's SHA-256", member="manifest.json")
    try:
        manifest = _parse(manifest_raw, "manifest.json")
        listed = manifest["members"]
        if manifest["format"] != FORMAT or set(listed) != set(files) - {"manifest.json"}:
            raise LedgerError("manifest format or member list does not match the bundle", member="manifest.json")
        for name, digest in listed.items():
            if hashlib.sha256(files[name]).hexdigest() != digest:
                raise LedgerError("member does not match its SHA-256 in the manifest", member=name)
        directory = KeyDirectory(trust=Trust(anchor))
        catalog = Catalog()
        for name in sorted(n for n in files if n.startswith("schemas/")):
            catalog.add_catalog_record(files[name])
        for name in sorted(n for n in files if n.startswith("directory/")):
            try:
                learn_record(directory, catalog, _record_of(_parse(files[name], name), name))
            except BusError as err:
                if anchor is not None:
                    raise LedgerError(f"directory record {name} does not chain to the trust anchor: {err.message}",
                                      member=name) from err
        for name in sorted(n for n in files if n.startswith("keys/")):
            key = _key_of(_parse(files[name], name))
            if key.key_id not in directory:
                directory.add(key)  # checks key id and proof of possession
        checkpoints: dict[str, Checkpoint] = {}
        for name in sorted(n for n in files if n.startswith("checkpoints/")):
            cp = Checkpoint.from_bytes(files[name])
            try:
                verify(cp, checkpoint_verifier(directory, cp))
            except UntrustedKeyError as err:
                raise LedgerError(f"checkpoint {name} is signed by a key that does not chain to the trust anchor: "
                                  f"{err.message}", member=name) from err
            checkpoints[name] = cp
        wire = Wire(catalog, directory)
        records = [_check_event(name, _parse(files[name], name), checkpoints) for name in manifest["events"]]
        opened = open_records(wire, records)
    except (KeyError, TypeError, ValueError, AttributeError) as exc:
        raise LedgerError(f"bundle content is malformed: {exc!r}") from exc
    bad = next((o for o in opened if not o.ok), None)
    if bad is not None:
        untrusted = " (its key does not chain to the trust anchor)" if bad.error_class in _UNTRUSTED else ""
        raise LedgerError(f"event {bad.topic}[{bad.partition}]@{bad.offset} does not verify{untrusted}: "
                          f"{bad.error_class}: {bad.error}", topic=bad.topic, partition=bad.partition, offset=bad.offset)
    if files.get("timeline.html") != render_timeline(manifest["dossier"], opened):
        raise LedgerError("timeline.html is not the rendering of the verified events", member="timeline.html")
    return BundleReport(manifest["dossier"], manifest["created"], opened, len(checkpoints), len(directory))


def _check_event(name: str, doc: dict[str, Any], checkpoints: dict[str, Checkpoint]) -> Record:
    record = _record_of(doc, name)
    anchor, latest = checkpoints.get(doc["anchor"]), checkpoints.get(doc["latest"])
    if anchor is None or latest is None:
        raise LedgerError("event refers to a checkpoint the bundle lacks", member=name)
    log_id = f"{record.topic}/{record.partition}"
    if anchor.log_id != log_id or latest.log_id != log_id:
        raise ProofError("event's checkpoints are of another log", member=name, log=log_id)
    try:
        verify_inclusion(record_leaf(record), int(doc["position"]), anchor.size,
                         [bytes.fromhex(h) for h in doc["inclusion"]], anchor.root)
        verify_consistency(anchor.size, latest.size, anchor.root, latest.root,
                           [bytes.fromhex(h) for h in doc["consistency"]])
    except ProofError as err:
        err.context.update(member=name, topic=record.topic, partition=record.partition, offset=record.offset)
        raise
    return record


async def collect_evidence(settings: BusSettings, catalog: Catalog, directory: KeyDirectory, dossier: str, *,
                           topics: Sequence[str] | None = None, clock: Any = None) -> bytes:
    """Build the bundle of ``dossier`` from the broker: trace, proofs at the signed checkpoints, keys, schemas.

    Each event is anchored at the first checkpoint of its partition that covers it and
    matches the records, with a consistency proof to the latest such checkpoint.
    """
    from bus._codec import fingerprint_of
    from bus.ledger._replay import read_all
    from bus.ledger._trace import trace_dossier
    from bus.ledger._verify import PartitionScan, load_checkpoints

    wire = Wire(catalog, directory, max_event_bytes=settings.max_event_bytes)
    timeline = await trace_dossier(settings, wire, dossier, topics=topics)
    if not timeline:
        raise LedgerError(f"no verified event for dossier {dossier}", hint="check the dossier id with `bus trace`")
    cp_records = await read_all(settings, topic_map(settings)["ledger.checkpoints"].name)
    by_log, _bad = load_checkpoints(cp_records, directory)
    parts: dict[tuple[str, int], tuple[PartitionScan, dict[int, Record], MerkleTree]] = {}
    for topic in sorted({e.topic or "" for e in timeline}):
        scans: dict[int, PartitionScan] = {}
        by_offset: dict[int, dict[int, Record]] = {}
        for record in await read_all(settings, topic):
            p = record.partition or 0
            scans.setdefault(p, PartitionScan(topic, p)).add(record)
            by_offset.setdefault(p, {})[record.offset or 0] = record
        for p, scan in scans.items():
            parts[(topic, p)] = (scan, by_offset[p], MerkleTree(scan.leaves))
    events, keys, schemas = [], {}, {}
    for item in timeline:
        scan, records, tree = parts[(item.topic or "", item.partition or 0)]
        record = records[item.offset or 0]
        position = scan.offsets.index(item.offset or 0)
        good = [e.checkpoint for e in by_log.get(scan.log_id, [])
                if e.checkpoint.size > position and e.checkpoint.root == tree.root(e.checkpoint.size)]
        if not good:
            raise LedgerError(f"{item.topic}[{item.partition}]@{item.offset} is not yet covered by a checkpoint",
                              hint="run `bus ledger checkpoint`, then build the bundle again")
        anchor, latest = min(good, key=lambda c: c.size), max(good, key=lambda c: (c.size, c.timestamp_ms))
        events.append(EvidenceEvent(record, position, anchor, tree.inclusion_proof(position, anchor.size), latest,
                                    tree.consistency_proof(anchor.size, latest.size)))
        for key_id in (item.sigkeyid or "", *anchor.signers, *latest.signers):
            keys[key_id] = directory.get(key_id)
        # the verified ce_dataschema names the writer: the value may be sealed or personal (bus._erasure)
        writer = catalog.by_fingerprint(bytes.fromhex(Envelope.from_headers(record.headers).dataschema[-16:]))
        if writer is not None:
            schemas[writer.fingerprint] = writer
            reader = catalog.latest(writer.name)
            schemas[reader.fingerprint] = reader
    subjects = {f"{kind}:{k}".encode() for k in keys for kind in ("key", "approval", "revocation")}
    about = [r for r in await read_all(settings, topic_map(settings)["reference.administrations"].name)
             if r.key in subjects or (r.key or b"").startswith(b"authority:")]
    for record in about:
        writer = catalog.by_fingerprint(fingerprint_of(record.value or b""))
        if writer is not None:
            schemas[writer.fingerprint] = writer
    now = clock() if clock is not None else dt.datetime.now(dt.UTC)
    return build_bundle(dossier, events, list(keys.values()), list(schemas.values()), created=now, catalog=catalog,
                        directory_records=about)
