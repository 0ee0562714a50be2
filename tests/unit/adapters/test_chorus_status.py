"""Chorus Pro status notifications: mapping to lifecycle codes, histories, errors with their location, fuzzing."""

from __future__ import annotations

import datetime as dt
import json
import zoneinfo
from pathlib import Path
from typing import Any

import fastavro
import fastavro.validation
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from adapters import _cdar, chorus_status, invoice_status
from adapters._registry import detect, sniff
from bus._errors import AdapterError, DocumentTooLargeError, MalformedDocumentError, NonConformantError

AVSC = Path(__file__).resolve().parents[3] / "schemas/avro/invoices/InvoiceStatusChanged.v1.avsc"
FUZZ = settings(max_examples=80, deadline=None, suppress_health_check=[HealthCheck.too_slow])
ENTRY = {"identifiantFactureCPP": 123, "numeroFacture": "F-1", "siretFournisseur": "99999999800019",
         "statutFacture": "MISE_A_DISPOSITION", "dateStatut": "2026-03-01T10:00:00+01:00"}


@pytest.fixture(scope="module")
def avro_schema() -> Any:
    return fastavro.parse_schema(json.loads(AVSC.read_text(encoding="utf-8")))


def doc(value: Any) -> bytes:
    return json.dumps(value).encode()


def test_single_notification(avro_schema: Any) -> None:
    pivot = chorus_status.to_pivot(doc(ENTRY), name="cpp.json")
    assert pivot.type == "fr.dcant.invoices.InvoiceStatusChanged"
    assert pivot.subject == "invoice:999999998:F-1"
    assert pivot.format == "chorus-status"
    d = pivot.data
    assert (d["status_code"], d["chorus_status"], d["source"], d["chorus_invoice_id"]) == ("203", "MISE_A_DISPOSITION", "CHORUS_PRO", 123)
    assert (d["seller_id"], d["seller_id_scheme"]) == ("99999999800019", "0009")
    assert d["status_time"] == dt.datetime(2026, 3, 1, 9, tzinfo=dt.UTC)
    assert fastavro.validation.validate(dict(d), avro_schema, raise_errors=True)


def test_history_entries_inherit_the_invoice_fields(avro_schema: Any) -> None:
    history = {"identifiantFactureCPP": "456", "numeroFacture": "F-2", "siretFournisseur": "99999999800019",
               "historiqueStatuts": [
                   {"statutFacture": "DEPOSEE", "dateStatut": "2026-03-01T09:00:00"},
                   {"statutFacture": "SUSPENDUE", "dateStatut": "2026-03-05T11:00:00Z", "motif": "bon de commande absent"},
                   {"statutFacture": "MISE_EN_PAIEMENT", "dateStatut": "2026-03-20", "numeroFacture": "F-2-bis"},
               ]}
    pivots = list(chorus_status.to_pivots(doc(history)))
    assert [p.data["status_code"] for p in pivots] == ["200", "208", "211"]
    assert [p.data["status_label"] for p in pivots] == ["Déposée", "Suspendue", None]
    assert [p.subject for p in pivots] == ["invoice:999999998:F-2", "invoice:999999998:F-2",
                                           "invoice:999999998:F-2-bis"]
    assert pivots[0].data["chorus_invoice_id"] == 456
    assert pivots[0].data["status_time"] == dt.datetime(2026, 3, 1, 9, tzinfo=zoneinfo.ZoneInfo("Europe/Paris"))
    assert pivots[1].data["reason_text"] == "bon de commande absent"
    assert chorus_status.to_pivot(doc(history)).data["chorus_status"] == "DEPOSEE"
    for pivot in pivots:
        assert fastavro.validation.validate(dict(pivot.data), avro_schema, raise_errors=True)


def test_mapping_targets_allowed_lifecycle_codes() -> None:
    assert set(chorus_status.LIFECYCLE_CODES.values()) <= _cdar.STATUS_CODES
    for status in ("DEPOSEE", "EN_COURS_ACHEMINEMENT", "MISE_A_DISPOSITION", "A_RECYCLER", "REJETEE", "SUSPENDUE",
                   "COMPLETEE", "SERVICE_FAIT", "MANDATEE", "MISE_A_DISPOSITION_COMPTABLE", "COMPTABILISEE",
                   "MISE_EN_PAIEMENT", "A_COMPLETER"):
        pivot = chorus_status.to_pivot(doc({**ENTRY, "statutFacture": status}))
        assert pivot.data["status_code"] == chorus_status.LIFECYCLE_CODES[status]
    assert chorus_status.LIFECYCLE_CODES["REJETEE"] == "210"  # a refusal, not a platform rejection (213)


def test_detect() -> None:
    assert chorus_status.detect(sniff(doc(ENTRY)))
    assert detect(doc(ENTRY)) is chorus_status
    assert not chorus_status.detect(sniff(b'{"siren": "999999998"}'))
    assert not chorus_status.detect(sniff(b"<statutFacture/>"))


@pytest.mark.parametrize(("entry", "xpath"), [
    ({**ENTRY, "statutFacture": "INCONNU"}, "$.statutFacture"),
    ({**ENTRY, "statutFacture": 3}, "$.statutFacture"),
    ({k: v for k, v in ENTRY.items() if k != "numeroFacture"}, "$.numeroFacture"),
    ({**ENTRY, "siretFournisseur": "9999"}, "$.siretFournisseur"),
    ({**ENTRY, "siretFournisseur": "٩٩٩٩٩٩٩٩٩٩٩٩٩٩"}, "$.siretFournisseur"),
    ({**ENTRY, "dateStatut": "1er mars"}, "$.dateStatut"),
    ({**ENTRY, "identifiantFactureCPP": -1}, "$.identifiantFactureCPP"),
    ({**ENTRY, "identifiantFactureCPP": True}, "$.identifiantFactureCPP"),
    ({"historiqueStatuts": [ENTRY, "x"]}, "$.historiqueStatuts[1]"),
    ({"historiqueStatuts": {}}, "$.historiqueStatuts"),
    ({"historiqueStatuts": []}, "$.historiqueStatuts"),
    ([ENTRY], "$"),
])
def test_errors_are_located(entry: Any, xpath: str) -> None:
    with pytest.raises(NonConformantError) as info:
        chorus_status.to_pivot(doc(entry), name="cpp.json") if xpath == "$.historiqueStatuts" else list(
            chorus_status.to_pivots(doc(entry), name="cpp.json"))
    assert info.value.context["xpath"] == xpath
    assert info.value.context["document"] == "cpp.json"


def test_not_json_and_too_large() -> None:
    with pytest.raises(MalformedDocumentError):
        chorus_status.to_pivot(b'{"statutFacture": ')
    with pytest.raises(DocumentTooLargeError):
        chorus_status.to_pivot(b'{"statutFacture": "' + b"x" * (16 * 1024 * 1024) + b'"}')


def test_a_chorus_status_is_written_as_cdar_only_when_complete() -> None:
    """Chorus Pro gives no invoice issue date: the CDAR writer names the rule it cannot meet."""
    pivot = chorus_status.to_pivot(doc({**ENTRY, "statutFacture": "DEPOSEE"}))
    with pytest.raises(NonConformantError) as info:
        invoice_status.from_pivot(pivot)
    assert info.value.context["rule"] == "BR-FR-CDV-11_MDG-35"


# ---------------------------------------------------------------------------- fuzzing

KEYS = ["identifiantFactureCPP", "numeroFacture", "siretFournisseur", "statutFacture", "dateStatut", "motif",
        "historiqueStatuts"]
SCALARS = (st.none() | st.booleans() | st.integers() | st.floats() | st.text(max_size=20)
           | st.sampled_from([*chorus_status.LIFECYCLE_CODES, "2026-03-01T10:00:00", "99999999800019", "2026-13-01"]))
JSON = st.recursive(SCALARS, lambda inner: st.lists(inner, max_size=4)
                    | st.dictionaries(st.sampled_from(KEYS) | st.text(max_size=5), inner, max_size=6), max_leaves=20)


def _only_adapter_errors(data: bytes) -> None:
    try:
        list(chorus_status.to_pivots(data, name="fuzz"))
    except AdapterError:
        pass


@FUZZ
@given(data=st.binary(max_size=1024))
def test_fuzz_random_bytes(data: bytes) -> None:
    _only_adapter_errors(data)


@FUZZ
@given(value=st.dictionaries(st.sampled_from(KEYS), JSON, max_size=7))
def test_fuzz_random_notifications(value: dict[str, Any]) -> None:
    _only_adapter_errors(json.dumps(value).encode())


def test_deep_nesting_is_malformed_not_a_crash() -> None:
    with pytest.raises(AdapterError):
        chorus_status.to_pivot(b'{"statutFacture": ' + b"[" * 100_000 + b"]" * 100_000 + b"}")
