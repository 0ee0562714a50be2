"""Archiving: a closed dossier becomes a SEDA 2.2 ArchiveTransfer, and the archival agency's reply closes it.

:class:`Archiving` is a pure core keyed by the dossier (``act:<SIREN>:<number>``,
``contract:<id>``; replies come back keyed ``transfer:<MessageIdentifier>`` and are mapped to
their dossier through the identifier, ``<dossier>/transfer-<n>``). Steps of a dossier:

1. Its documents are kept from ``fr.dcant.acts.ActTransmitted`` (claim checks: sha256, size,
   URI, file name, media type) with its description (objet, act id, decision date).
2. A closing event closes it: any event whose CloudEvents type is a key of ``closing_events``
   (default :data:`DEFAULT_CLOSING_EVENTS`: ``fr.dcant.acts.ActBecameExecutory``,
   ``fr.dcant.accounting.ContractPaidInFull``). Of such an event the core reads only the
   subject, whose first segment is the dossier type naming the profile (``act``,
   ``contract``), the buyer whose dossier it is (``buyer_id``, when the dossier's key names no
   collectivity; else the signer's SIREN), and the closing date: the payload field the mapping
   names when the payload has it, else the event's time (Europe/Paris date). The retention start follows from the
   profile's rule (``closing_date`` or ``end_of_closing_year``, 31 December of the closing
   year). State CLOSED (``fr.dcant.archives.ArchiveStateChanged``).
3. The core reads no content store: it emits ``fr.dcant.archives.DocumentsDigestRequested``
   with the claim checks; the shell answers ``fr.dcant.archives.DocumentsDigested`` (SHA-512,
   size, media type, file name per sha256). A document the store lacks, or whose size differs
   from its claim check, blocks the dossier (DOCUMENTS_MISSING, with the list).
4. Once the digests are in and the retention start is reached (at once, or later by
   ``on_time``), ``fr.dcant.archives.ArchiveTransferRequested`` carries an
   ``fr.dcant.archives.ArchiveTransfer`` pivot built from the profile (agreement, profile id,
   agencies, AppraisalRule with its final action and start date, AccessRule, description
   levels) that :func:`adapters.seda.from_pivot` writes as SEDA 2.2. State TRANSFER_REQUESTED.
5. ``fr.dcant.archives.ArchiveTransferReplied`` for that transfer: a reply code in
   ``accepted_reply_codes`` (OK, WARNING as Vitam answers, 000 as SEDA 1.0 did) archives the
   dossier (ARCHIVED); any other reopens it (REOPENED, with the code and comment as reason). A
   reopened dossier is closed again by a new closing event, which makes a new transfer.

With a profile bank (:class:`bus._profiles.ProfileBank`) and the directory's archive services
(``routes``, collectivity SIREN → archive service SIREN), a transfer goes to the archive service
that serves the dossier's collectivity (its ArchivalAgency), and is sent only if it follows the
version of the RelaxNG profile (the JSON profile's ``archival_profile``) that this service
approved: otherwise the dossier is PROFILE_REFUSED, the reason naming the missing approval or
the failing element, and a new closing event tries again. A collectivity the directory assigns
to no archive service is NO_ARCHIVE_SERVICE. Without them the profile's
``archival_agency_identifier`` receives every transfer, unchecked.

Personal data (issue 12): the dossier's title is an act's objet, which may name a natural person.
The ArchiveTransfer schema marks the archive units' titles personal, and the transfer names the
dossier (:attr:`bus.Event.dossier`) whose key encrypts them, though its subject is the transfer's:
erasing the act erases the transfer's title. The state keeps the title until the dossier is
ARCHIVED (a rejected transfer is made again), then drops it.

Idempotence: processed ``ce_id`` values are kept, and one transfer per closing: a closing
event for a dossier already closed, in transfer or archived, and a reply to another transfer,
change nothing. Profiles are declarative JSON files (``processors/profiles/<type>.json``)
read by :func:`load_profile` from their text; :func:`packaged_profiles` reads the shipped
ones for the shell.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import json
import re
import zoneinfo
from collections.abc import Mapping
from importlib import resources
from typing import Any

from bus import ConfigurationError, Context, Event, Received, follow_up
from bus._errors import AdapterError

__all__ = [
    "ACCEPTED_REPLY_CODES",
    "DEFAULT_CLOSING_EVENTS",
    "Archiving",
    "ArchivingProfile",
    "RuleSpec",
    "BankReader",
    "bank_binding",
    "build_transfer",
    "load_profile",
    "packaged_profiles",
    "transfer_identifier",
]

PARIS = zoneinfo.ZoneInfo("Europe/Paris")
A = "fr.dcant.archives."
TRANSMITTED, DIGESTED, REPLIED = "fr.dcant.acts.ActTransmitted", A + "DocumentsDigested", A + "ArchiveTransferReplied"
#: closing event type -> payload field holding the closing date (None: the event's time).
DEFAULT_CLOSING_EVENTS: Mapping[str, str | None] = {
    "fr.dcant.acts.ActBecameExecutory": "executory_date",
    "fr.dcant.accounting.ContractPaidInFull": "last_payment_date",
}
ACCEPTED_REPLY_CODES = frozenset({"OK", "WARNING", "000"})
_TRANSFER_SEPARATOR = "/transfer-"
_DURATION = re.compile(r"P(?=\d)(\d+Y)?(\d+M)?(\d+D)?")
_LEVELS = frozenset({"Fonds", "Subfonds", "Class", "Collection", "Series", "Subseries", "RecordGrp", "SubGrp",
                     "File", "Item", "OtherLevel"})
_RETENTION_STARTS = ("closing_date", "end_of_closing_year")
#: States a new closing event closes again (a refused profile is retried once approved or fixed).
_REOPENABLE = ("OPEN", "REOPENED", "PROFILE_REFUSED", "NO_ARCHIVE_SERVICE")


# -- profiles -----------------------------------------------------------------------------------

@dataclasses.dataclass(frozen=True, slots=True)
class RuleSpec:
    """A SEDA management rule: its id in the archival agency's repository, duration, final action."""

    rule_id: str
    duration: str
    final_action: str | None = None


@dataclasses.dataclass(frozen=True, slots=True)
class ArchivingProfile:
    """What the archiving of one dossier type is: agreement, profile, agencies, rules, levels."""

    dossier_type: str
    label: str
    seda_version: str
    archival_agreement: str
    archival_profile: str
    archival_agency_identifier: str
    originating_agency_identifier: str | None
    transferring_agency_identifier: str | None
    legal_status: str
    appraisal_rule: RuleSpec
    access_rule: RuleSpec
    description_level: str
    document_description_level: str
    retention_start: str

    def retention_start_date(self, closing: dt.date) -> dt.date:
        """SEDA AppraisalRule/StartDate for a dossier closed on ``closing``."""
        return closing if self.retention_start == "closing_date" else dt.date(closing.year, 12, 31)


def load_profile(text: str, *, name: str = "<profile>") -> ArchivingProfile:
    """Parse and check an archiving profile (JSON text); ConfigurationError naming the bad key."""
    def bad(message: str) -> ConfigurationError:
        return ConfigurationError(f"archiving profile {name}: {message}", profile=name,
                                  hint="compare it with processors/profiles/act.json")

    try:
        raw = json.loads(text)
    except json.JSONDecodeError as exc:
        raise bad(f"not JSON: {exc}") from exc
    if not isinstance(raw, dict):
        raise bad("must be a JSON object")
    fields = {f.name for f in dataclasses.fields(ArchivingProfile)}
    if set(raw) != fields:
        raise bad(f"missing {sorted(fields - set(raw))}, unknown {sorted(set(raw) - fields)}")
    rules = {}
    for key, actions in (("appraisal_rule", {"Keep", "Destroy"}), ("access_rule", {None})):
        rule = raw[key]
        if not isinstance(rule, dict) or not isinstance(rule.get("rule_id"), str) or not rule["rule_id"].strip():
            raise bad(f"{key} needs a rule_id")
        if not isinstance(rule.get("duration"), str) or not _DURATION.fullmatch(rule["duration"]):
            raise bad(f"{key}.duration must be an ISO 8601 duration in years, months, days (P10Y)")
        if rule.get("final_action") not in actions:
            raise bad(f"{key}.final_action must be one of {sorted(a or 'null' for a in actions)}")
        if set(rule) - {"rule_id", "duration", "final_action"}:
            raise bad(f"{key} has unknown keys {sorted(set(rule) - {'rule_id', 'duration', 'final_action'})}")
        rules[key] = RuleSpec(rule["rule_id"], rule["duration"], rule.get("final_action"))
    for key in ("description_level", "document_description_level"):
        if raw[key] not in _LEVELS:
            raise bad(f"{key} must be a SEDA DescriptionLevel: {sorted(_LEVELS)}")
    if raw["retention_start"] not in _RETENTION_STARTS:
        raise bad(f"retention_start must be one of {list(_RETENTION_STARTS)}")
    if raw["seda_version"] not in ("2.2", "2.3"):
        raise bad("seda_version must be 2.2 or 2.3")
    for key in ("dossier_type", "label", "archival_agreement", "archival_profile", "archival_agency_identifier",
                "legal_status"):
        if not isinstance(raw[key], str) or not raw[key].strip():
            raise bad(f"{key} must be a non-empty string")
    for key in ("originating_agency_identifier", "transferring_agency_identifier"):
        if raw[key] is not None and (not isinstance(raw[key], str) or not raw[key].strip()):
            raise bad(f"{key} must be a non-empty string, or null for the dossier's collectivity")
    return ArchivingProfile(**{**raw, **rules})


def packaged_profiles() -> dict[str, ArchivingProfile]:
    """The profiles shipped in ``processors/profiles``, by dossier type (for the shell: reads files)."""
    folder = resources.files("processors") / "profiles"
    profiles = [load_profile(entry.read_text(encoding="utf-8"), name=entry.name)
                for entry in sorted(folder.iterdir(), key=lambda e: e.name) if entry.name.endswith(".json")]
    return {p.dossier_type: p for p in profiles}


def transfer_identifier(dossier: str, attempt: int) -> str:
    """SEDA MessageIdentifier of the ``attempt``-th transfer of ``dossier``."""
    return f"{dossier}{_TRANSFER_SEPARATOR}{attempt}"


# -- the core -----------------------------------------------------------------------------------

class Archiving:
    """Pure core of the archiving of closed dossiers, one state per dossier."""

    name = "archiving"
    inputs: tuple[str, ...] = ("acts", "accounting", "archives")
    tables: tuple[str, ...] = ()

    def __init__(self, profiles: Mapping[str, ArchivingProfile], *,
                 closing_events: Mapping[str, str | None] = DEFAULT_CLOSING_EVENTS,
                 accepted_reply_codes: frozenset[str] = ACCEPTED_REPLY_CODES,
                 bank: Any = None, routes: dict[str, str] | None = None) -> None:
        self.profiles = dict(profiles)
        #: The profile bank (bus._profiles.ProfileBank) and collectivity → archive service: read, never copied.
        self.bank, self.routes = bank, routes
        self.closing_events = dict(closing_events)
        self.types = frozenset({REPLIED, DIGESTED, TRANSMITTED, *self.closing_events})
        self.accepted_reply_codes = accepted_reply_codes

    def key(self, event: Received, ctx: Context) -> str | None:
        if event.type == REPLIED:
            dossier, sep, _attempt = str(event.data["message_request_identifier"]).rpartition(_TRANSFER_SEPARATOR)
            return dossier if sep and self._profile_of(dossier) else None
        if event.type == DIGESTED:
            return event.data["dossier"] if self._profile_of(event.data["dossier"]) else None
        if event.type == TRANSMITTED or event.type in self.closing_events:
            return event.subject if self._profile_of(event.subject) else None
        return None

    def _profile_of(self, dossier: str) -> ArchivingProfile | None:
        return self.profiles.get(dossier.split(":", 1)[0])

    def initial_state(self) -> dict[str, Any]:
        return {"dossier": None, "correlation": None, "collectivity": None, "description": None,
                "documents": [], "status": "OPEN", "closing_date": None, "retention_start": None,
                "digests": None, "attempt": 0, "transfer_id": None}

    def process(self, state: dict[str, Any], event: Received, ctx: Context) -> tuple[dict[str, Any], list[Event]]:
        state["dossier"] = state["dossier"] or self.key(event, ctx)
        state["correlation"] = state["correlation"] or event.envelope.correlationid or event.id
        if event.type == TRANSMITTED:
            if state["status"] in ("OPEN", "REOPENED"):
                self._keep_act(state, event.data)
            return state, []
        if event.type in self.closing_events:
            return state, self._close(state, event, ctx)
        if event.type == DIGESTED:
            return state, self._digested(state, event, ctx)
        return state, self._replied(state, event, ctx)

    @staticmethod
    def _keep_act(state: dict[str, Any], act: Mapping[str, Any]) -> None:
        state["collectivity"] = act["siren"]
        state["description"] = {"title": act["object"], "act_id": act.get("act_id"),
                                "decision_date": act["decision_date"].isoformat()}
        state["documents"] = [
            {"sha256": d["content"]["sha256"], "size": d["content"]["size"], "uri": d["content"]["uri"],
             "file_name": d["file_name"], "media_type": d["media_type"], "role": d["role"]}
            for d in act["documents"] if d.get("content")  # a file without claim check has no bytes to transfer
        ]

    def _close(self, state: dict[str, Any], event: Received, ctx: Context) -> list[Event]:
        if state["status"] not in _REOPENABLE:
            return []  # one transfer per closing
        profile = self._profile_of(state["dossier"])
        assert profile is not None  # key() routed only dossiers with a profile
        field = self.closing_events[event.type]
        closing = event.data.get(field) if field else None
        if not isinstance(closing, dt.date):
            closing = event.time.astimezone(PARIS).date()
        state["collectivity"] = state["collectivity"] or _collectivity(state["dossier"], event.data,
                                                                       event.envelope.source)
        state["closing_date"] = closing.isoformat()
        state["retention_start"] = profile.retention_start_date(closing).isoformat()
        state["attempt"] += 1
        state["transfer_id"] = transfer_identifier(state["dossier"], state["attempt"])
        state["status"], state["digests"] = "CLOSED", None
        out = [self._state_event(state, event, ctx.now)]
        documents = list({d["sha256"]: d for d in state["documents"]}.values())
        if documents:
            out.append(follow_up(event, type=A + "DocumentsDigestRequested", schema=A + "DocumentsDigestRequested",
                                 subject=state["dossier"], data={
                                     "dossier": state["dossier"],
                                     "documents": [{"sha256": d["sha256"], "size": d["size"], "uri": d["uri"]}
                                                   for d in documents]}))
        else:
            state["digests"] = {}
        return out + self._maybe_transfer(state, event, ctx)

    def _digested(self, state: dict[str, Any], event: Received, ctx: Context) -> list[Event]:
        if state["status"] != "CLOSED" or state["digests"] is not None:
            return []
        answered = {d["sha256"]: d for d in event.data["documents"]}
        missing = sorted(set(event.data.get("missing") or []) | {
            d["sha256"] for d in state["documents"]
            if d["sha256"] not in answered or answered[d["sha256"]]["size"] != d["size"]})
        if missing:
            state["status"] = "DOCUMENTS_MISSING"
            return [self._state_event(state, event, ctx.now,
                                      reason="documents missing from the content store: " + ", ".join(missing))]
        state["digests"] = {sha: {"sha512": d["sha512"], "size": d["size"], "media_type": d.get("media_type"),
                                  "file_name": d.get("file_name")} for sha, d in answered.items()}
        return self._maybe_transfer(state, event, ctx)

    def _replied(self, state: dict[str, Any], event: Received, ctx: Context) -> list[Event]:
        reply = event.data
        if state["status"] != "TRANSFER_REQUESTED" or reply["message_request_identifier"] != state["transfer_id"]:
            return []
        code = reply.get("reply_code")
        if code in self.accepted_reply_codes:
            state["status"] = "ARCHIVED"
            if state["description"]:  # data minimisation: an archived dossier makes no new transfer
                state["description"]["title"] = None
            return [self._state_event(state, event, reply["date"], reply_code=code)]
        state["status"] = "REOPENED"
        reason = reply.get("comment") or f"rejected by {reply['archival_agency_identifier']} with code {code}"
        return [self._state_event(state, event, reply["date"], reply_code=code, reason=reason)]

    def on_time(self, state: dict[str, Any], key: str, ctx: Context) -> tuple[dict[str, Any], list[Event]]:
        """The transfer of a closed dossier whose retention start is reached."""
        return state, self._maybe_transfer(state, None, ctx)

    # -- outputs ----------------------------------------------------------------------------

    def _maybe_transfer(self, state: dict[str, Any], cause: Received | None, ctx: Context) -> list[Event]:
        if state["status"] != "CLOSED" or state["digests"] is None:
            return []
        if ctx.now.astimezone(PARIS).date() < dt.date.fromisoformat(state["retention_start"]):
            return []
        profile = self._profile_of(state["dossier"])
        assert profile is not None
        service = profile.archival_agency_identifier
        if self.routes is not None:
            if state["collectivity"] not in self.routes:
                state["status"] = "NO_ARCHIVE_SERVICE"
                return [self._state_event(state, cause, ctx.now, reason=(
                    f"aucun service d'archives n'est affecté à la collectivité {state['collectivity']} "
                    "dans l'annuaire"))]
            service = self.routes[state["collectivity"]]
        transfer = build_transfer(profile, state, ctx.now, archive_service=service)
        if self.bank is not None:
            try:
                self._check_profile(transfer, service)
            except AdapterError as err:  # unapproved profile, or the transfer does not follow it
                state["status"] = "PROFILE_REFUSED"
                return [self._state_event(state, cause, ctx.now, reason=err.message)]
        state["status"] = "TRANSFER_REQUESTED"
        # the units' titles are personal (an act's objet): encrypted under the dossier's key, not the transfer's
        request = self._event(state, cause, type=A + "ArchiveTransferRequested", schema=A + "ArchiveTransfer",
                              data=transfer, subject=f"transfer:{state['transfer_id']}", dossier=state["dossier"])
        return [request, self._state_event(state, cause, ctx.now)]

    def _check_profile(self, transfer: Mapping[str, Any], service: str) -> None:
        """The transfer as SEDA, checked against the profile version ``service`` approved (RelaxNG)."""
        from adapters import seda
        from adapters.seda import validate_transfer

        banked = self.bank.approved(transfer["archival_profile"], service)
        validate_transfer(banked.grammar, seda.from_pivot(transfer, kind="ArchiveTransfer"),
                          profile=f"{banked.profile_id} v{banked.version}", name=transfer["message_identifier"])

    def _state_event(self, state: Mapping[str, Any], cause: Received | None, when: dt.datetime, *,
                     reply_code: str | None = None, reason: str | None = None) -> Event:
        profile = self._profile_of(state["dossier"])
        return self._event(state, cause, type=A + "ArchiveStateChanged", schema=A + "ArchiveStateChanged",
                           subject=state["dossier"], data={
                               "dossier": state["dossier"], "dossier_type": profile.dossier_type if profile else "",
                               "state": state["status"], "date": when,
                               "closing_date": _date(state["closing_date"]),
                               "retention_start": _date(state["retention_start"]),
                               "transfer_identifier": state["transfer_id"], "reply_code": reply_code,
                               "reason": reason})

    @staticmethod
    def _event(state: Mapping[str, Any], cause: Received | None, *, type: str, schema: str,
               data: Mapping[str, Any], subject: str, dossier: str | None = None) -> Event:
        if cause is not None:
            return follow_up(cause, type=type, schema=schema, data=data, subject=subject, dossier=dossier)
        return Event(type=type, subject=subject, schema=schema, data=data, correlationid=state["correlation"],
                     dossier=dossier)


def _date(value: str | None) -> dt.date | None:
    return dt.date.fromisoformat(value) if value else None


def _collectivity(dossier: str, data: Mapping[str, Any], source: str) -> str | None:
    """SIREN of the dossier's collectivity: from ``act:<SIREN>:...``, else the closing event's buyer
    (``buyer_id``, a SIREN or a SIRET), else the ``urn:siren:<SIREN>:`` source.

    The buyer comes before the source: a contract's closing event (ContractPaidInFull) is signed
    by the worker that keeps the accounts, on behalf of the buyer whose dossier it is.
    """
    buyer = data.get("buyer_id") if isinstance(data, Mapping) else None
    for candidate in (dossier.split(":")[1:2],
                      [buyer[:9]] if isinstance(buyer, str) and re.fullmatch(r"[0-9]{9}(?:[0-9]{5})?", buyer) else [],
                      source.split(":")[2:3] if source.startswith("urn:siren:") else []):
        if candidate and re.fullmatch(r"[0-9]{9}", candidate[0]):
            return candidate[0]
    return None


def _rule(spec: RuleSpec, start: dt.date) -> dict[str, Any]:
    return {"rules": [{"rule_id": spec.rule_id, "start_date": start}], "prevent_inheritance": None,
            "ref_non_rule_ids": [], "final_action": spec.final_action}


def _unit(unit_id: str, parent: str | None, **fields: Any) -> dict[str, Any]:
    base: dict[str, Any] = {
        "id": unit_id, "parent_id": parent, "archive_unit_ref_id": None, "archive_unit_profile": None,
        "management": None, "description_level": None, "title": None, "description": None, "created_date": None,
        "transacted_date": None, "start_date": None, "end_date": None, "data_object_refs": [],
        "data_object_group_refs": [],
    }
    return {**base, **fields}


def build_transfer(profile: ArchivingProfile, state: Mapping[str, Any], now: dt.datetime, *,
                   archive_service: str | None = None) -> dict[str, Any]:
    """The ``fr.dcant.archives.ArchiveTransfer`` pivot of a closed dossier whose digests are known,
    sent to ``archive_service`` (default: the profile's archival agency)."""
    dossier, closing = state["dossier"], dt.date.fromisoformat(state["closing_date"])
    collectivity = state["collectivity"] or profile.archival_agency_identifier
    description = state["description"] or {}
    documents = list({d["sha256"]: d for d in state["documents"]}.values())
    binaries, units = [], [_unit(
        "AU-DOSSIER", None, description_level=profile.description_level,
        title=description.get("title") or f"{profile.label} : {dossier}",
        description=f"{profile.label}. Dossier {dossier}" + (
            f", acte {description['act_id']}" if description.get("act_id") else ""),
        start_date=description.get("decision_date"), end_date=closing.isoformat(),
    )]
    for index, document in enumerate(documents, 1):
        digest = state["digests"][document["sha256"]]
        file_name = digest.get("file_name") or document["file_name"]
        extension = re.sub(r"[^A-Za-z0-9]", "", file_name.rsplit(".", 1)[-1]) if "." in file_name else ""
        binaries.append({
            "id": f"BIN-{index}", "data_object_group_id": None, "data_object_version": "BinaryMaster_1",
            "uri": f"Content/BIN-{index}" + (f".{extension}" if extension else ""),
            "message_digest": digest["sha512"], "digest_algorithm": "SHA-512", "size": digest["size"],
            "format_litteral": None, "mime_type": digest.get("media_type") or document["media_type"],
            "format_id": None, "filename": file_name,
        })
        units.append(_unit(f"AU-{index}", "AU-DOSSIER", description_level=profile.document_description_level,
                           title=file_name, description="Acte" if document.get("role") == "MAIN" else None,
                           data_object_refs=[f"BIN-{index}"]))
    retention = dt.date.fromisoformat(state["retention_start"])
    return {
        "seda_version": profile.seda_version, "message_identifier": state["transfer_id"], "date": now,
        "comment": (f"Versement du dossier {dossier} ({profile.label}); DUA {profile.appraisal_rule.duration} "
                    f"à compter du {retention.isoformat()}, sort final {profile.appraisal_rule.final_action}"),
        "archival_agreement": profile.archival_agreement,
        "archival_agency_identifier": archive_service or profile.archival_agency_identifier,
        "transferring_agency_identifier": profile.transferring_agency_identifier or collectivity,
        "archival_profile": profile.archival_profile, "service_level": None, "acquisition_information": "Versement",
        "legal_status": profile.legal_status,
        "originating_agency_identifier": profile.originating_agency_identifier or collectivity,
        "submission_agency_identifier": profile.transferring_agency_identifier or collectivity,
        "management": {"storage_rule": None, "appraisal_rule": _rule(profile.appraisal_rule, retention),
                       "access_rule": _rule(profile.access_rule, closing), "dissemination_rule": None,
                       "reuse_rule": None, "need_authorization": None},
        "archive_units": units, "binary_data_objects": binaries, "physical_data_objects": [],
    }


# -- the shell step: the bank and the directory's routes, kept current ------------------------

class BankReader:
    """The archiving core's shell step with ``BUS_ARCHIVE_PROFILE_BANK``: before an event that may
    make a transfer (a closing, the digests), read what is new on the profile bank and the
    directory into the bank and routes the core holds. A record refused (a grammar with an
    external reference, a forged approval) is logged and skipped: it never enters the bank."""

    def __init__(self, settings: Any, core: Archiving) -> None:
        self.settings, self.core = settings, core
        self._ctx: Any = None
        self._offsets: dict[int, int] = {}

    async def __call__(self, event: Received) -> Mapping[str, Mapping[str, Any]]:
        if event.type == DIGESTED or event.type in self.core.closing_events:
            await self.refresh()
        return {}

    async def refresh(self) -> None:
        import logging

        from bus._profiles import learn_profile_records
        from bus._runtime import BusContext
        from bus.client import read_topic

        if self._ctx is None:
            self._ctx = await BusContext.connect(self.settings, create_topics=False)
        else:
            await self._ctx.refresh()  # the directory: keys, and the archive services it assigns
        records = await read_topic(self.settings, self._ctx.topic("reference.profiles"),
                                   from_offsets=self._offsets or None)
        for record in records:
            self._offsets[record.partition or 0] = (record.offset or 0) + 1
        for refusal in learn_profile_records(self.core.bank, self._ctx, records):
            logging.getLogger(__name__).warning("profile bank record refused %s", refusal)
        self.core.routes.clear()
        self.core.routes.update(self._ctx.directory.archive_services)


def bank_binding(settings: Any) -> Any:
    """The archiving core with the profile bank and the directory's routes (a :class:`bus.Binding`)."""
    from bus import Binding
    from bus._profiles import ProfileBank

    core = Archiving(packaged_profiles(), bank=ProfileBank(), routes={})
    return Binding(core, BankReader(settings, core))
