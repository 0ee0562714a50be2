"""The acts lifecycle: transmission, AR, executory status, legality control and publication of one act.

:class:`ActsLifecycle` is a pure core keyed by the act (``act:<SIREN>:<NumeroInterne>``). It
keeps the facts the ACTES messages and the local authority report (transmitted, AR date,
publication or notification, letters of the legality control) and derives the act's state
from them; every change of that state is an ``fr.dcant.acts.ActStateChanged`` event.

Executory status (CGCT L2131-1)
    An act is executory once transmitted to the prefect (the ``@DateReception`` of the ACTES
    ARActe) *and* published or notified (``fr.dcant.acts.ActPublicationRecorded``), from the
    later of the two dates: ``fr.dcant.acts.ActBecameExecutory``, once, on the day it happens
    (a publication announced for a later date waits for that date, see ``on_time``). A lettre
    d'observations keeps the act executory but flags it (``under_observation``); a déféré to
    the tribunal administratif or an acknowledged cancellation (ARAnnulation) makes it no
    longer executory: strictly the déféré is not suspensive (only the judge suspends), but the
    bus stops presenting a contested act as executory to publication, registers and archives.

Déféré window (CGCT L2131-6), fired by ``on_time``
    The prefect may refer the act to the tribunal within two months of its reception, a
    *délai franc*: the last day is the same day-of-month two months after the AR date, plus
    one, moved to the next working day when it is a Saturday, Sunday or French public holiday
    (Easter-based ones included). A demande de pièces complémentaires made within the window
    suspends it, and it restarts from the answer (the collectivity's pieces or refusal, then
    the prefecture's AR of the pieces). A lettre d'observations made within the window is a
    recours gracieux: the window restarts from the collectivity's answer (réponse or rejet),
    or, without an answer, from its implicit rejection two months after the letter. When the
    window ends without a déféré, the act is ``LEGALITY_WINDOW_CLOSED``. A courrier simple
    changes nothing (it is recorded in the state only).

Publication with personal data pseudonymised (CGCT L2131-1, RGPD art. 4-5 and 5-1-c)
    Deliberations (nature 1, DE) and regulatory acts (nature 2, AR) recorded as PUBLISHED get
    an ``fr.dcant.acts.ActPublished`` record, once. The Act pivot has no field-level personal
    data flags (only a yes/no ``personal_data``), so the names of natural persons to hide are
    those the publication event lists in ``personal_data`` (field ``title`` or ``text`` +
    value as written). Each occurrence (case and spacing insensitive, whole words) becomes
    ``[personne-xxxxxxxx]``: the first 8 hex digits of HMAC-SHA256 over the normalised name
    (NFKC, casefolded, spaces collapsed), keyed with the *collectivity's* pseudonymisation
    key given to the constructor by SIREN. Tokens are stable: the same person gets the same
    token across the acts of one collectivity, so readers can cross-reference decisions about
    one person without learning who it is, while without the key a token cannot be
    recomputed from a guessed name (a plain hash could be, by dictionary). The key is kept by
    the collectivity (a secret of its deployment, never in the state, the events or logs);
    rotating it changes every token. 32 bits of token give about a 1 % chance of one
    collision among 10,000 distinct names of one collectivity. A listed name not found in a
    field the publication itself gives is refused (dead-letter) rather than published
    unhidden; a publication naming persons for a collectivity without a key is refused too.

Once the publication is made, the state drops the clear title, text and names (RGPD art. 5-1-c);
the objet of an act that is never published (an individual decision, nature 3 and beyond) is not
kept at all. The ``ActPublished`` record is not erasable: it is the publication the law requires,
its names pseudonymised; the transmitted objet stays erasable in ``ActTransmitted``.

Idempotence: the runtime's step skips an event whose ``ce_id`` it already processed for this
state (:class:`bus.Step`), and every rule is a fact update, so a redelivered message changes
nothing and emits nothing.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import hmac
import re
import unicodedata
import zoneinfo
from collections.abc import Callable, Mapping
from typing import Any

from bus import ConfigurationError, Context, Event, NonConformantError, Received, follow_up

__all__ = ["PUBLISHABLE_NATURES", "ActsLifecycle", "legality_window_end", "pseudonym", "pseudonymise"]

PARIS = zoneinfo.ZoneInfo("Europe/Paris")
#: ACTES natures published electronically (adapters._actes_common.NATURES): 1 DE, 2 AR.
PUBLISHABLE_NATURES: Mapping[int, str] = {1: "DE", 2: "AR"}
PSEUDONYMISATION = "hmac-sha256-v1"
_PSEUDONYM_CONTEXT = b"dcant-pseudonym-v1\x00"
_PUBLISHABLE_FIELDS = ("title", "text")

T = "fr.dcant.acts."
TRANSMITTED, ACKNOWLEDGED, ANOMALY = T + "ActTransmitted", T + "ActAcknowledged", T + "ActAnomalyReported"
CANCELLED, PREFECTURE, PUBLICITY = T + "ActCancelled", T + "PrefectureMessageReceived", T + "ActPublicationRecorded"
HANDLED = frozenset({TRANSMITTED, ACKNOWLEDGED, ANOMALY, CANCELLED, PREFECTURE, PUBLICITY})
_PIECES_ANSWERS = ("REPONSE_PIECES_COMPLEMENTAIRES", "REFUS_PIECES_COMPLEMENTAIRES", "AR_REPONSE_PIECES_COMPLEMENTAIRES")


# -- pseudonymisation ---------------------------------------------------------------------------

def _normalise(value: str) -> str:
    return " ".join(unicodedata.normalize("NFKC", value).casefold().split())


def pseudonym(key: bytes, value: str) -> str:
    """The stable token of a natural person's name under ``key`` (the collectivity's secret)."""
    digest = hmac.new(key, _PSEUDONYM_CONTEXT + _normalise(value).encode(), hashlib.sha256).hexdigest()
    return f"[personne-{digest[:8]}]"


def _pattern(value: str) -> re.Pattern[str]:
    words = unicodedata.normalize("NFC", value).split()
    return re.compile(r"(?<!\w)" + r"\s+".join(map(re.escape, words)) + r"(?!\w)", re.IGNORECASE)


def pseudonymise(text: str, values: list[str], key: bytes) -> tuple[str, int]:
    """``text`` with every occurrence of ``values`` replaced by its pseudonym, and the count.

    Longer names go first, so "Jean Dupont" is replaced whole before a listed "Dupont".
    """
    count = 0
    text = unicodedata.normalize("NFC", text)
    for value in sorted({v for v in values if v.strip()}, key=len, reverse=True):
        text, n = _pattern(value).subn(pseudonym(key, value), text)
        count += n
    return text, count


# -- dates --------------------------------------------------------------------------------------

def _add_months(day: dt.date, months: int) -> dt.date:
    month = day.month - 1 + months
    year, month = day.year + month // 12, month % 12 + 1
    for candidate in (day.day, 30, 29, 28):  # same day-of-month, or the month's last day
        try:
            return dt.date(year, month, candidate)
        except ValueError:
            continue
    raise AssertionError("unreachable: every month has 28 days")


def _easter(year: int) -> dt.date:
    """Gregorian Easter Sunday (the anonymous Gregorian computus)."""
    a, b, c = year % 19, year // 100, year % 100
    d, e = divmod(b, 4)
    g = (b - (b + 8) // 25 + 1) // 3
    h = (19 * a + b - d - g + 15) % 30
    i, k = divmod(c, 4)
    l_ = (32 + 2 * e + 2 * i - h - k) % 7
    m = (a + 11 * h + 22 * l_) // 451
    month, day = divmod(h + l_ - 7 * m + 114, 31)
    return dt.date(year, month, day + 1)


def _holidays(year: int) -> set[dt.date]:
    """French public holidays (Code du travail L3133-1), metropolitan list."""
    easter = _easter(year)
    fixed = {(1, 1), (5, 1), (5, 8), (7, 14), (8, 15), (11, 1), (11, 11), (12, 25)}
    return {dt.date(year, m, d) for m, d in fixed} | {easter + dt.timedelta(days=n) for n in (1, 39, 50)}


def _next_working_day(day: dt.date) -> dt.date:
    while day.weekday() >= 5 or day in _holidays(day.year):
        day += dt.timedelta(days=1)
    return day


def legality_window_end(start: dt.date) -> dt.date:
    """Last day of a two-month délai franc starting on ``start`` (CGCT L2131-6, CJA R421-1)."""
    return _next_working_day(_add_months(start, 2) + dt.timedelta(days=1))


def _iso(value: dt.date | None) -> str | None:
    return value.isoformat() if value is not None else None


def _date(value: str | None) -> dt.date | None:
    return dt.date.fromisoformat(value) if value else None


def _today(ctx: Context) -> dt.date:
    return ctx.now.astimezone(PARIS).date()


# -- the core -----------------------------------------------------------------------------------


def derived_pseudonym_keys(secret: bytes) -> Callable[[str], bytes | None]:
    """Per-collectivity keys derived from one deployment secret: HMAC-SHA256(secret, label || SIREN).

    One secret (``BUS_PSEUDONYMISATION_SECRET``) serves every collectivity of a mutualised bus
    while each gets its own key, so tokens of two collectivities never match. Changing the
    secret changes every token from then on; published tokens stay as they were.
    """
    if len(secret) < 16:
        raise ConfigurationError("the pseudonymisation secret must be at least 16 bytes",
                                 hint="set BUS_PSEUDONYMISATION_SECRET to 32 random bytes, base64 or hex")

    def key_for(siren: str) -> bytes:
        return hmac.new(secret, b"dcant-bus pseudonym key v1|" + siren.encode(), hashlib.sha256).digest()

    return key_for


class ActsLifecycle:
    """Pure core of the acts lifecycle.

    ``pseudonym_keys`` maps a SIREN to its secret key (>= 16 bytes), or is a function giving the
    key of a SIREN (None when it has none), e.g. :func:`derived_pseudonym_keys`.
    """

    name = "acts-lifecycle"
    inputs: tuple[str, ...] = ("acts",)
    types = HANDLED
    tables: tuple[str, ...] = ()

    def __init__(self, pseudonym_keys: Mapping[str, bytes] | Callable[[str], bytes | None]) -> None:
        if callable(pseudonym_keys):
            self._key_for: Callable[[str], bytes | None] = pseudonym_keys
            return
        for siren, key in pseudonym_keys.items():
            if not isinstance(key, bytes) or len(key) < 16:
                raise ConfigurationError(
                    f"the pseudonymisation key of {siren} must be at least 16 random bytes", siren=siren,
                    hint="generate it with secrets.token_bytes(32) and keep it with the collectivity",
                )
        self._key_for = dict(pseudonym_keys).get

    def __repr__(self) -> str:  # never show the keys
        return "ActsLifecycle(pseudonym_keys=<secret>)"

    def key(self, event: Received, ctx: Context) -> str | None:
        if event.type not in HANDLED or not event.subject.startswith("act:"):
            return None  # envelope anomalies (envelope:<SIREN>) concern no single act
        return event.subject

    def initial_state(self) -> dict[str, Any]:
        return {
            "subject": None, "act_id": None, "correlation": None, "act": None, "transmitted": False,
            "anomaly": None,
            "ar_date": None, "publicity": None, "publication": None, "published": False,
            "executory_date": None, "pieces_requested": False, "window_suspended": False,
            "observations": False, "observation_pending_since": None, "window_start": None, "window_basis": None,
            "deferred": False, "cancel_requested": False, "cancelled": False, "window_closed": False,
            "exchanges": [], "snapshot": None,
        }

    # -- messages ---------------------------------------------------------------------------

    def process(self, state: dict[str, Any], event: Received, ctx: Context) -> tuple[dict[str, Any], list[Event]]:
        data = event.data
        state["act_id"] = state["act_id"] or data.get("act_id")
        state["correlation"] = state["correlation"] or event.envelope.correlationid or event.id
        state["subject"] = event.subject
        on: dt.date = event.time.astimezone(PARIS).date()
        code, detail = None, None
        if event.type == TRANSMITTED:
            state["transmitted"], state["anomaly"] = True, None  # a new transmission supersedes an anomaly
            # data minimisation: the objet (personal, it may name a person) is kept only to publish it
            state["act"] = {
                "nature_code": data["nature_code"], "decision_date": data["decision_date"].isoformat(),
                "classification_code": data["classification_code"],
                "object": data["object"] if data["nature_code"] in PUBLISHABLE_NATURES else None,
            }
            code = "1-1"
        elif event.type == ACKNOWLEDGED:
            on = data["reception_date"]
            state["transmitted"], state["anomaly"] = True, None
            if state["ar_date"] is None:
                state["ar_date"] = state["window_start"] = on.isoformat()
                state["window_basis"] = "AR"
            code = "1-2"
        elif event.type == ANOMALY:
            if data["scope"] != "ACT":
                return state, []
            on, code, detail = data["anomaly_date"], "1-3", data.get("detail")
            state["anomaly"] = {"date": on.isoformat(), "nature": data["nature_code"], "detail": detail}
        elif event.type == CANCELLED:
            code = "6-1" if data["stage"] == "REQUESTED" else "6-2"
            if data["stage"] == "REQUESTED":
                state["cancel_requested"] = True
            else:
                on = data.get("reception_date") or on
                state["cancelled"] = True
        elif event.type == PREFECTURE:
            on = data.get("reception_date") or data.get("message_date") or on
            code, detail = data["message_code"], data.get("text")
            self._prefecture(state, data["kind"], on)
        elif event.type == PUBLICITY:
            on = data["date"]
            self._record_publicity(state, data, event.subject)
        return state, self._advance(state, ctx, cause=event, on=on, code=code, detail=detail)

    def _prefecture(self, state: dict[str, Any], kind: str, on: dt.date) -> None:
        state["exchanges"] = [*state["exchanges"], {"kind": kind, "date": on.isoformat()}][-50:]
        running = self._window_end(state)
        within = running is not None and on <= running
        if kind == "PIECES_COMPLEMENTAIRES":
            state["pieces_requested"] = True
            if within:
                state["window_suspended"] = True
        elif kind in _PIECES_ANSWERS:
            state["pieces_requested"] = False
            later_ar = kind == "AR_REPONSE_PIECES_COMPLEMENTAIRES" and state["window_basis"] == "PIECES"
            if state["window_suspended"] or later_ar:
                state["window_suspended"] = False
                state["window_start"], state["window_basis"] = on.isoformat(), "PIECES"
        elif kind == "LETTRE_OBSERVATIONS":
            state["observations"] = True
            if within:
                state["observation_pending_since"] = on.isoformat()
        elif kind in ("REPONSE_LETTRE_OBSERVATIONS", "REJET_LETTRE_OBSERVATIONS", "AR_REPONSE_LETTRE_OBSERVATIONS"):
            later_ar = kind == "AR_REPONSE_LETTRE_OBSERVATIONS" and state["window_basis"] == "OBSERVATIONS"
            if state["observation_pending_since"] or later_ar:
                state["observation_pending_since"] = None
                state["window_start"], state["window_basis"] = on.isoformat(), "OBSERVATIONS"
        elif kind == "DEFERE":
            state["deferred"] = True

    def _record_publicity(self, state: dict[str, Any], data: Mapping[str, Any], subject: str) -> None:
        if state["publicity"] is None:
            state["publicity"] = {"mode": data["mode"], "date": data["date"].isoformat()}
        if data["mode"] != "PUBLISHED" or state["publication"] is not None:
            return
        mentions = [dict(m) for m in data.get("personal_data") or []]
        siren = subject.split(":")[1]
        for mention in mentions:
            field = mention["field"]
            if field not in _PUBLISHABLE_FIELDS:
                raise NonConformantError(
                    f"personal_data names the field {field!r}; only {list(_PUBLISHABLE_FIELDS)} are published",
                    rule="PUBLICATION-PERSONAL-DATA", xpath="personal_data.field", document=subject,
                )
            given = data.get(field)
            if given is not None and not _pattern(mention["value"]).search(unicodedata.normalize("NFC", given)):
                raise NonConformantError(
                    f"personal_data lists a value not found in {field}: it would be published unhidden",
                    rule="PUBLICATION-PERSONAL-DATA", xpath=f"personal_data[{field}]", document=subject,
                    hint="quote each name exactly as it is written in the field",
                )
        if mentions and self._key_for(siren) is None:
            raise ConfigurationError(
                f"no pseudonymisation key for the collectivity {siren}: cannot publish personal data hidden",
                siren=siren, hint="give ActsLifecycle the collectivity's key (pseudonym_keys) and redrive the event",
            )
        state["publication"] = {
            "date": data["date"].isoformat(), "title": data.get("title"), "text": data.get("text"),
            "url": data.get("url"), "personal_data": mentions,
        }

    # -- derived state and outputs ---------------------------------------------------------

    @staticmethod
    def _window_end(state: Mapping[str, Any]) -> dt.date | None:
        if state["ar_date"] is None or state["deferred"] or state["cancelled"] or state["window_suspended"]:
            return None
        pending = _date(state["observation_pending_since"])
        start = _add_months(pending, 2) if pending else _date(state["window_start"])
        return legality_window_end(start) if start else None

    @staticmethod
    def _label(state: Mapping[str, Any]) -> str | None:
        for label, holds in (
            ("CANCELLED", state["cancelled"]),
            ("DEFERRED", state["deferred"]),
            ("IN_ANOMALY", state["anomaly"] is not None),
            ("PIECES_REQUESTED", state["pieces_requested"] and not state["window_closed"]),
            ("UNDER_OBSERVATION", state["observations"] and not state["window_closed"]),
            ("LEGALITY_WINDOW_CLOSED", state["window_closed"]),
            ("EXECUTORY", state["executory_date"] is not None),
            ("ACKNOWLEDGED", state["ar_date"] is not None),
            ("TRANSMITTED", state["transmitted"]),
        ):
            if holds:
                return label
        return None

    def _advance(self, state: dict[str, Any], ctx: Context, *, cause: Received | None, on: dt.date,
                 code: str | None = None, detail: str | None = None) -> list[Event]:
        """Apply the rules that depend on time, then emit what changed."""
        today, subject = _today(ctx), state["subject"]
        out: list[Event] = []
        live = not (state["deferred"] or state["cancelled"])
        if live and state["executory_date"] is None and state["ar_date"] and state["publicity"]:
            executory = max(_date(state["ar_date"]), _date(state["publicity"]["date"]))  # type: ignore[type-var]
            if executory <= today:
                state["executory_date"], on = executory.isoformat(), executory
                out.append(self._event(state, cause, subject, "ActBecameExecutory", "ActExecutory",
                                       self._executory_record(state, subject)))
        if live and state["publication"] and not state["published"] and state["act"]:
            state["published"] = True
            if state["act"]["nature_code"] in PUBLISHABLE_NATURES:
                out.append(self._event(state, cause, subject, "ActPublished", "ActPublished",
                                       self._publication_record(state, subject)))
            # data minimisation: the names and clear texts are not kept once the publication is made
            state["publication"] = {"date": state["publication"]["date"]}
            state["act"]["object"] = None
        end = self._window_end(state)
        if end is not None and not state["window_closed"] and today > end:
            state["window_closed"], on = True, end
        label = self._label(state)
        executory = state["executory_date"] is not None and live
        snapshot = [label, executory, state["observations"], _iso(end if not state["window_closed"] else None)]
        if label is not None and snapshot != state["snapshot"]:
            previous = state["snapshot"][0] if state["snapshot"] else None
            state["snapshot"] = snapshot
            siren, number = subject.split(":", 2)[1:]
            out.append(self._event(state, cause, subject, "ActStateChanged", "ActStateChanged", {
                "act_id": state["act_id"], "siren": siren, "number": number, "state": label,
                "previous_state": previous, "date": on, "executory": executory,
                "under_observation": state["observations"], "legality_window_end": _date(snapshot[3]),
                "cause_type": cause.type if cause else "clock", "cause_id": cause.id if cause else None,
                "message_code": code, "detail": detail,
            }))
        return out

    @staticmethod
    def _event(state: Mapping[str, Any], cause: Received | None, subject: str, event_type: str, schema: str,
               data: Mapping[str, Any]) -> Event:
        if cause is not None:
            return follow_up(cause, type=T + event_type, schema=T + schema, data=data, subject=subject)
        return Event(type=T + event_type, subject=subject, schema=T + schema, data=data,
                     correlationid=state["correlation"])

    @staticmethod
    def _executory_record(state: Mapping[str, Any], subject: str) -> dict[str, Any]:
        siren, number = subject.split(":", 2)[1:]
        act = state["act"] or {}
        return {
            "act_id": state["act_id"], "siren": siren, "number": number, "nature_code": act.get("nature_code"),
            "decision_date": _date(act.get("decision_date")), "transmission_date": _date(state["ar_date"]),
            "publicity_mode": state["publicity"]["mode"], "publicity_date": _date(state["publicity"]["date"]),
            "executory_date": _date(state["executory_date"]),
        }

    def _publication_record(self, state: Mapping[str, Any], subject: str) -> dict[str, Any]:
        siren, number = subject.split(":", 2)[1:]
        act, publication = state["act"], state["publication"]
        key = self._key_for(siren) or b""
        count = 0
        fields: dict[str, str | None] = {"title": publication["title"] or act["object"], "text": publication["text"]}
        for field, value in fields.items():
            if value is not None:
                names = [m["value"] for m in publication["personal_data"] if m["field"] == field]
                fields[field], n = pseudonymise(value, names, key) if names else (value, 0)
                count += n
        return {
            "act_id": state["act_id"], "siren": siren, "number": number, "nature_code": act["nature_code"],
            "nature_abbreviation": PUBLISHABLE_NATURES[act["nature_code"]],
            "decision_date": _date(act["decision_date"]), "classification_code": act["classification_code"],
            "title": fields["title"], "text": fields["text"], "publication_date": _date(publication["date"]),
            "url": publication["url"], "pseudonymisation": PSEUDONYMISATION, "pseudonymised_count": count,
        }

    # -- time -------------------------------------------------------------------------------

    def on_time(self, state: dict[str, Any], key: str, ctx: Context) -> tuple[dict[str, Any], list[Event]]:
        """Executory status reached on a future publication date; the déféré window's end."""
        state["subject"] = key
        return state, self._advance(state, ctx, cause=None, on=_today(ctx))
