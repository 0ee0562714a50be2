"""The procurement events between the notice and the DECP: tenders, rejection, notification.

A buyer's profile (profil d'acheteur) knows when a tender arrives, when the tenders are opened,
which tenders it rejects and when the contract is notified; no native exchange format carries
these, so the profile (or the gateway on its behalf) builds the pivots with these functions,
which check what they are given and compute what the code de la commande publique fixes:

=========================  =================  ==============================================
function                   event              computed
=========================  =================  ==============================================
:func:`tender_submitted`   TenderSubmitted    (the signature check is recorded as reported)
:func:`tenders_opened`     TendersOpened      received count from the tender ids
:func:`tender_rejected`    TenderRejected     French labels, délai de suspension (R2182-1)
:func:`contract_notified`  ContractNotified   end date from the duration
=========================  =================  ==============================================

Tender signatures are PAdES, XAdES or CAdES signatures of the tenderer's documents, checked
against the EU trusted lists by the buyer's profile; the bus verifies only its own event
signatures and the XAdES of PES files, so :func:`signature_check` records the profile's result
with its details (``checked_by="buyer_profile"``). Contract modifications come from native
documents: :mod:`adapters.eforms` (notices 38–40) and :mod:`adapters.decp` (``modifications``).
Bad input raises :class:`~bus._errors.NonConformantError` naming the field.
"""

from __future__ import annotations

import calendar
import datetime as dt
from collections.abc import Iterable, Mapping, Sequence
from decimal import Decimal, InvalidOperation
from typing import Any

from bus._errors import NonConformantError

from ._base import Pivot

__all__ = [
    "REJECTION_LABELS",
    "STANDSTILL_DAYS",
    "STANDSTILL_DAYS_NOT_ELECTRONIC",
    "add_months",
    "contract_end",
    "contract_notified",
    "signature_check",
    "standstill",
    "tender_rejected",
    "tender_submitted",
    "tenders_opened",
]

FORMAT_NAME = "procurement-lifecycle"
_P = "fr.dcant.procurement."

#: Délai de suspension between the rejection letters and the signature (R2182-1), in days.
STANDSTILL_DAYS = 11
#: The same délai when the letter was not sent by electronic means (R2182-1).
STANDSTILL_DAYS_NOT_ELECTRONIC = 16

#: Rejection reason codes and the French label the letter gives.
REJECTION_LABELS: dict[str, str] = {
    "irregular": "Offre irrégulière (article L2152-2 du code de la commande publique)",
    "unacceptable": "Offre inacceptable (article L2152-3 du code de la commande publique)",
    "inappropriate": "Offre inappropriée (article L2152-4 du code de la commande publique)",
    "abnormally_low": "Offre anormalement basse (article L2152-5 du code de la commande publique)",
    "not_ranked_first": "Offre non retenue : elle n'est pas économiquement la plus avantageuse (article R2152-7)",
    "candidature": "Candidature non admise (article R2144-7 du code de la commande publique)",
}

_SIGNATURE_STATUSES = ("valid", "invalid", "indeterminate", "unsigned")
_CHECKERS = ("bus", "buyer_profile")
_SIGNATURE_FIELDS = frozenset({"checked_by", "status", "signature_format", "level", "signer", "certificate_issuer",
                               "signing_time", "checked_at", "checker", "report_sha256", "details"})


def _bad(message: str, *, field: str, document: str | None) -> NonConformantError:
    return NonConformantError(message, document=document, xpath=field, rule=f"{FORMAT_NAME}-{field}")


def _text(value: Any, field: str, document: str | None) -> str:
    if not isinstance(value, str) or not value.strip():
        raise _bad(f"{field} is required and must be a non-empty string", field=field, document=document)
    return value.strip()


#: La Poste's establishments (SIREN 356 000 000) have SIRETs whose digits add up to a multiple of 5
#: instead of passing the Luhn check (INSEE).
_LA_POSTE = "356000000"


def _luhn(digits: str) -> bool:
    total = 0
    for index, char in enumerate(reversed(digits)):
        value = int(char) * (2 if index % 2 else 1)
        total += value - 9 if value > 9 else value
    return total % 10 == 0


def _siret(value: Any, field: str, document: str | None) -> str:
    digits = "".join(str(value or "").split())
    if len(digits) != 14 or not digits.isdigit():
        raise _bad(f"{field} must be a SIRET (14 digits), got {value!r}", field=field, document=document)
    valid = sum(map(int, digits)) % 5 == 0 if digits.startswith(_LA_POSTE) else _luhn(digits)
    if not valid:
        raise _bad(f"{field} {digits} is not a SIRET: its check digit is wrong", field=field, document=document)
    return digits


def _optional_siret(value: Any, field: str, document: str | None) -> str | None:
    return None if value is None else _siret(value, field, document)


def _amount(value: Any, field: str, document: str | None) -> str | None:
    if value is None:
        return None
    try:
        number = Decimal(str(value).strip())
    except InvalidOperation:
        number = None
    if number is None or not number.is_finite() or number < 0:
        raise _bad(f"{field} must be a non-negative decimal, got {value!r}", field=field, document=document)
    return str(value).strip()


def _instant(value: Any, field: str, document: str | None) -> dt.datetime:
    if not isinstance(value, dt.datetime) or value.tzinfo is None:
        raise _bad(f"{field} must be a datetime with its UTC offset", field=field, document=document)
    return value


def _date(value: Any, field: str, document: str | None) -> dt.date:
    if not isinstance(value, dt.date) or isinstance(value, dt.datetime):
        raise _bad(f"{field} must be a date", field=field, document=document)
    return value


def add_months(day: dt.date, months: int) -> dt.date:
    """The same day ``months`` later, or the month's last day when it has fewer days."""
    index = day.month - 1 + months
    year, month = day.year + index // 12, index % 12 + 1
    return day.replace(year=year, month=month, day=min(day.day, calendar.monthrange(year, month)[1]))


def contract_end(start: dt.date | None, duration_months: int | None) -> dt.date | None:
    """Last day of a contract that starts on ``start`` and lasts ``duration_months`` (DECP dureeMois)."""
    if start is None or duration_months is None or duration_months <= 0:
        return None
    return add_months(start, duration_months) - dt.timedelta(days=1)


def standstill(sent_on: dt.date, *, electronic: bool) -> tuple[int, dt.date]:
    """(days, last day) of the délai de suspension opened by rejection letters sent on ``sent_on``.

    R2182-1: at least 11 days between the sending of the letters and the signature of the
    contract, 16 when they were not sent by electronic means. The day of sending is not
    counted, so the last day is ``sent_on + days`` and the contract may be signed the day after.
    """
    days = STANDSTILL_DAYS if electronic else STANDSTILL_DAYS_NOT_ELECTRONIC
    return days, sent_on + dt.timedelta(days=days)


def signature_check(status: str, *, checked_at: dt.datetime, checker: str | None = None,
                    checked_by: str = "buyer_profile", details: Iterable[str] = (), signature_format: str | None = None,
                    level: str | None = None, signer: str | None = None, certificate_issuer: str | None = None,
                    signing_time: dt.datetime | None = None, report_sha256: str | None = None) -> dict[str, Any]:
    """The ``signature`` of a TenderSubmitted: the result of checking the tender's signature.

    ``status`` is ``valid`` / ``invalid`` / ``indeterminate`` (ETSI EN 319 102-1 TOTAL-PASSED,
    TOTAL-FAILED, INDETERMINATE) or ``unsigned``; ``checker`` names the profile and its validation
    service; ``details`` are the lines of its report (sub-indications, chain, revocation).
    """
    if status not in _SIGNATURE_STATUSES:
        raise _bad(f"signature status must be one of {', '.join(_SIGNATURE_STATUSES)}, got {status!r}",
                   field="signature.status", document=None)
    if checked_by not in _CHECKERS:
        raise _bad(f"signature checked_by must be one of {', '.join(_CHECKERS)}, got {checked_by!r}",
                   field="signature.checked_by", document=None)
    if report_sha256 is not None and (len(report_sha256) != 64 or any(c not in "0123456789abcdef" for c in report_sha256)):
        raise _bad("signature report_sha256 must be 64 lowercase hex digits", field="signature.report_sha256",
                   document=None)
    return {
        "checked_by": checked_by, "status": status, "signature_format": signature_format, "level": level,
        "signer": signer, "certificate_issuer": certificate_issuer,
        "signing_time": None if signing_time is None else _instant(signing_time, "signature.signing_time", None),
        "checked_at": _instant(checked_at, "signature.checked_at", None), "checker": checker,
        "report_sha256": report_sha256, "details": [str(line) for line in details],
    }


def _pivot(event: str, schema: str, subject: str, data: dict[str, Any]) -> Pivot:
    return Pivot(type=_P + event, schema=_P + schema, subject=subject, data=data, format=FORMAT_NAME)


def tender_submitted(*, procedure_id: str, lot_id: str, tender_id: str, tenderer_siret: str, received_at: dt.datetime,
                     signature: Mapping[str, Any], value: str | None = None, value_currency: str | None = None,
                     group_leader_siret: str | None = None, variant: bool | None = None,
                     documents_sha256: Sequence[str] | None = None) -> Pivot:
    """A TenderSubmitted pivot keyed ``notice:<procedure_id>``; ``signature`` from :func:`signature_check`."""
    doc = f"tender {tender_id}"
    if set(signature) != _SIGNATURE_FIELDS or signature["status"] not in _SIGNATURE_STATUSES:
        raise _bad("signature must be built with signature_check()", field="signature", document=doc)
    if value is not None and not value_currency:
        raise _bad("value_currency is required with value", field="value_currency", document=doc)
    data = {
        "procedure_id": _text(procedure_id, "procedure_id", doc), "lot_id": _text(lot_id, "lot_id", doc),
        "tender_id": _text(tender_id, "tender_id", doc),
        "tenderer_siret": _siret(tenderer_siret, "tenderer_siret", doc),
        "group_leader_siret": _optional_siret(group_leader_siret, "group_leader_siret", doc),
        "received_at": _instant(received_at, "received_at", doc), "value": _amount(value, "value", doc),
        "value_currency": value_currency, "variant": variant, "signature": dict(signature),
        "documents_sha256": list(documents_sha256) if documents_sha256 is not None else None,
    }
    return _pivot("TenderSubmitted", "TenderSubmitted", f"notice:{data['procedure_id']}", data)


def tenders_opened(*, procedure_id: str, lot_id: str, opened_at: dt.datetime, tender_ids: Sequence[str],
                   late_tenders: int = 0, place: str | None = None) -> Pivot:
    """A TendersOpened pivot keyed ``notice:<procedure_id>``: the tenders ``tender_ids`` were opened."""
    doc = f"procedure {procedure_id}"
    ids = [_text(t, "tender_ids", doc) for t in tender_ids]
    if len(set(ids)) != len(ids):
        raise _bad("tender_ids names a tender twice", field="tender_ids", document=doc)
    if late_tenders < 0:
        raise _bad("late_tenders cannot be negative", field="late_tenders", document=doc)
    data = {
        "procedure_id": _text(procedure_id, "procedure_id", doc), "lot_id": _text(lot_id, "lot_id", doc),
        "opened_at": _instant(opened_at, "opened_at", doc), "place": place, "tenders_received": len(ids),
        "tender_ids": ids, "late_tenders": late_tenders,
    }
    return _pivot("TendersOpened", "TendersOpened", f"notice:{data['procedure_id']}", data)


def tender_rejected(*, procedure_id: str, lot_id: str, tender_id: str, tenderer_siret: str,
                    reasons: Sequence[tuple[str, str | None]], sent_on: dt.date, sent_electronically: bool,
                    winner_name: str | None = None, winner_siret: str | None = None) -> Pivot:
    """A TenderRejected pivot keyed ``notice:<procedure_id>``.

    ``reasons`` are (code of :data:`REJECTION_LABELS`, the buyer's explanation or None); at least
    one is required (R2181-3). The délai de suspension comes from :func:`standstill`.
    """
    doc = f"tender {tender_id}"
    if not reasons:
        raise _bad("a rejection letter gives at least one reason (R2181-3)", field="reasons", document=doc)
    unknown = [code for code, _ in reasons if code not in REJECTION_LABELS]
    if unknown:
        raise _bad(f"unknown rejection reason {unknown[0]!r}; known: {', '.join(REJECTION_LABELS)}",
                   field="reasons", document=doc)
    days, end = standstill(_date(sent_on, "sent_on", doc), electronic=bool(sent_electronically))
    data = {
        "procedure_id": _text(procedure_id, "procedure_id", doc), "lot_id": _text(lot_id, "lot_id", doc),
        "tender_id": _text(tender_id, "tender_id", doc),
        "tenderer_siret": _siret(tenderer_siret, "tenderer_siret", doc),
        "reasons": [{"code": code, "label": REJECTION_LABELS[code], "detail": detail} for code, detail in reasons],
        "winner_name": winner_name, "winner_siret": _optional_siret(winner_siret, "winner_siret", doc),
        "sent_on": sent_on, "sent_electronically": bool(sent_electronically), "standstill_days": days,
        "standstill_end_date": end,
    }
    return _pivot("TenderRejected", "TenderRejected", f"notice:{data['procedure_id']}", data)


def contract_notified(*, contract_id: str, notification_date: dt.date, holder_sirets: Sequence[str],
                      procedure_id: str | None = None, lot_id: str | None = None, buyer_id: str | None = None,
                      signature_date: dt.date | None = None, amount: str | None = None, currency: str | None = "EUR",
                      duration_months: int | None = None) -> Pivot:
    """A ContractNotified pivot keyed ``contract:<contract_id>``; the contract starts on ``notification_date``."""
    doc = f"contract {contract_id}"
    notified = _date(notification_date, "notification_date", doc)
    if not holder_sirets:
        raise _bad("a contract is notified to at least one holder", field="holder_sirets", document=doc)
    if signature_date is not None and _date(signature_date, "signature_date", doc) > notified:
        raise _bad("the contract is signed before it is notified (R2182-4)", field="signature_date", document=doc)
    if duration_months is not None and duration_months <= 0:
        raise _bad("duration_months must be positive", field="duration_months", document=doc)
    data = {
        "contract_id": _text(contract_id, "contract_id", doc), "procedure_id": procedure_id, "lot_id": lot_id,
        "buyer_id": buyer_id, "holder_sirets": [_siret(s, "holder_sirets", doc) for s in holder_sirets],
        "signature_date": signature_date, "notification_date": notified, "amount": _amount(amount, "amount", doc),
        "currency": currency if amount is not None else None, "duration_months": duration_months,
        "end_date": contract_end(notified, duration_months),
    }
    return _pivot("ContractNotified", "ContractNotified", f"contract:{data['contract_id']}", data)
