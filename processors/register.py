"""The electronic register of deliberations: one append-only, hash-chained log per local authority.

:class:`DeliberationsRegister` is a pure core keyed by the register (``register:<SIREN>``). Each
published deliberation (``fr.dcant.acts.ActPublished`` with nature 1, DE) becomes one entry,
``fr.dcant.acts.RegisterEntryAdded`` (schema ``fr.dcant.acts.RegisterEntry``): its rank, the
act, the decision date, the published (pseudonymised) title, the publication date and two
hashes. The wire signs every event with the processor's key, which signs the entry.

Hash chain
    ``entry_hash`` is the SHA-256 (lowercase hex) of the canonical encoding of the entry's
    other fields: a JSON object of ``siren``, ``sequence``, ``act_id``, ``number``,
    ``decision_date``, ``title``, ``publication_date``, ``late_registration`` and
    ``previous_hash``, dates written ``YYYY-MM-DD``, keys sorted, no whitespace, UTF-8, no
    ASCII escaping: the RFC 8785 (JCS) form of these string, integer, boolean and null values.
    ``previous_hash`` is the previous entry's ``entry_hash`` (64 zeros for the first), so
    altering, removing, inserting or reordering an entry breaks every later link.
    :func:`verify_chain` is what an auditor runs over the entries read back from the topic.

Date order (CGCT R2121-9, register kept under electronic form per décret 2021-1311)
    Deliberations are registered "par ordre de date". The bus registers in arrival order and
    never reorders: an entry is appended after the last one, and when its decision date is
    older than that of an entry already registered it is marked ``late_registration`` (the
    electronic form of a paper register's dated mention of a late inscription). Holding
    entries back to sort them was rejected: nothing tells the register that no older
    deliberation is still to come, so it would delay the legal register indefinitely or
    still need a late mention, and a hash chain that could be rewritten to insert an entry
    would lose the very property (no insertion before an existing entry) the register needs.
    Readers list the register by decision date; the chain order is the registration order.

Idempotence: an act is registered once (its subject is kept with its rank), and processed
``ce_id`` values are kept, so a redelivered or republished deliberation adds nothing.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import json
from collections.abc import Iterable, Mapping
from typing import Any

from bus import Context, Event, Received, SecurityError, follow_up

__all__ = ["GENESIS_HASH", "DeliberationsRegister", "canonical_entry", "entry_hash", "verify_chain"]

GENESIS_HASH = "0" * 64
PUBLISHED = "fr.dcant.acts.ActPublished"
DELIBERATION = 1  # ACTES @CodeNatureActe of délibérations (DE)
HASHED_FIELDS = ("siren", "sequence", "act_id", "number", "decision_date", "title", "publication_date",
                 "late_registration", "previous_hash")


def _plain(value: Any) -> Any:
    return value.isoformat() if isinstance(value, dt.date) else value


def canonical_entry(entry: Mapping[str, Any]) -> bytes:
    """The bytes ``entry_hash`` is computed over (see the module docstring)."""
    return json.dumps({f: _plain(entry[f]) for f in HASHED_FIELDS}, sort_keys=True, ensure_ascii=False,
                      separators=(",", ":")).encode()


def entry_hash(entry: Mapping[str, Any]) -> str:
    """SHA-256, lowercase hex, of :func:`canonical_entry`."""
    return hashlib.sha256(canonical_entry(entry)).hexdigest()


def verify_chain(entries: Iterable[Mapping[str, Any]], *, previous_hash: str = GENESIS_HASH,
                 first_sequence: int = 1) -> None:
    """Check a register's entries in registration order; raise :class:`bus.SecurityError` on a broken link.

    ``entries`` the RegisterEntry records (dates as ``date`` or ISO strings); ``previous_hash``
    and ``first_sequence`` let an auditor check a slice that follows a trusted entry.
    """
    expected = first_sequence
    siren = None
    for entry in entries:
        where = {"sequence": entry.get("sequence"), "act_id": entry.get("act_id")}
        missing = [f for f in (*HASHED_FIELDS, "entry_hash") if f not in entry]
        if missing:
            raise SecurityError(f"register entry lacks {missing}", rule="REGISTER-FIELDS", **where)
        if siren is not None and entry["siren"] != siren:
            raise SecurityError("entry of another register in the chain", rule="REGISTER-SIREN", **where)
        siren = entry["siren"]
        if entry["sequence"] != expected:
            raise SecurityError(f"entry {entry['sequence']} found where entry {expected} was expected: "
                                "an entry was removed, inserted or moved", rule="REGISTER-SEQUENCE", **where,
                                hint="read the register again from its topic; report the gap to the auditor")
        if entry["previous_hash"] != previous_hash:
            raise SecurityError("previous_hash does not name the previous entry", rule="REGISTER-LINK", **where,
                                hint="the register was altered before this entry")
        if entry_hash(entry) != entry["entry_hash"]:
            raise SecurityError("entry_hash does not match the entry's fields: the entry was altered",
                                rule="REGISTER-HASH", **where, hint="compare the entry with the signed event")
        previous_hash, expected = entry["entry_hash"], expected + 1


class DeliberationsRegister:
    """Pure core of the registers of deliberations, one state per local authority."""

    name = "deliberations-register"
    inputs: tuple[str, ...] = ("acts",)
    types = frozenset({PUBLISHED})
    tables: tuple[str, ...] = ()

    def key(self, event: Received, ctx: Context) -> str | None:
        if event.type != PUBLISHED or event.data.get("nature_code") != DELIBERATION:
            return None
        return f"register:{event.data['siren']}"

    def initial_state(self) -> dict[str, Any]:
        return {"registered": {}, "sequence": 0, "last_hash": GENESIS_HASH, "latest_decision": None}

    def process(self, state: dict[str, Any], event: Received, ctx: Context) -> tuple[dict[str, Any], list[Event]]:
        if event.subject in state["registered"]:
            return state, []  # an act registers once, whichever event brought it (ids are deduped by the step)
        data = event.data
        decision: dt.date = data["decision_date"]
        latest = state["latest_decision"]
        entry: dict[str, Any] = {
            "siren": data["siren"], "sequence": state["sequence"] + 1, "act_id": data.get("act_id"),
            "number": data["number"], "decision_date": decision, "title": data["title"],
            "publication_date": data["publication_date"],
            "late_registration": latest is not None and decision < dt.date.fromisoformat(latest),
            "previous_hash": state["last_hash"],
        }
        entry["entry_hash"] = entry_hash(entry)
        state["sequence"], state["last_hash"] = entry["sequence"], entry["entry_hash"]
        state["registered"][event.subject] = entry["sequence"]
        if latest is None or decision.isoformat() > latest:
            state["latest_decision"] = decision.isoformat()
        return state, [follow_up(event, type="fr.dcant.acts.RegisterEntryAdded", schema="fr.dcant.acts.RegisterEntry",
                                 data=entry, subject=f"register:{data['siren']}")]

    def on_time(self, state: dict[str, Any], key: str, ctx: Context) -> tuple[dict[str, Any], list[Event]]:
        """The register has no timer."""
        return state, []
