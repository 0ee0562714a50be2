"""Unit tests of the ESPD response adapter on small hand-built responses (no corpus)."""

from __future__ import annotations

import datetime as dt

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from adapters import espd
from adapters._base import Sniff
from bus._errors import AdapterError, NonConformantError, UnknownFormatError

RESPONSE_NS = "urn:oasis:names:specification:ubl:schema:xsd:QualificationApplicationResponse-2"


def response(*, operator_id: str = "552 100 554 00012", scheme: str = 'schemeAgencyID="FR"', country: str = "FRA",
             folder: str = "<cbc:ContractFolderID>2024-MP-017</cbc:ContractFolderID>") -> bytes:
    return f"""<?xml version="1.0" encoding="UTF-8"?>
<QualificationApplicationResponse xmlns="{RESPONSE_NS}"
  xmlns:cac="urn:oasis:names:specification:ubl:schema:xsd:CommonAggregateComponents-2"
  xmlns:cbc="urn:oasis:names:specification:ubl:schema:xsd:CommonBasicComponents-2">
  <cbc:UBLVersionID>2.3</cbc:UBLVersionID>
  <cbc:ID>ESPD-RESP-1</cbc:ID>
  <cbc:UUID>0b6c3a7e-1111-4222-8333-944455556666</cbc:UUID>
  {folder}
  <cbc:IssueDate>2024-03-01</cbc:IssueDate>
  <cac:EconomicOperatorParty>
    <cac:EconomicOperatorRole><cbc:RoleCode>sole-contractor</cbc:RoleCode></cac:EconomicOperatorRole>
    <cac:Party>
      <cac:PartyIdentification><cbc:ID {scheme}>{operator_id}</cbc:ID></cac:PartyIdentification>
      <cac:PostalAddress><cac:Country><cbc:IdentificationCode>{country}</cbc:IdentificationCode></cac:Country></cac:PostalAddress>
    </cac:Party>
  </cac:EconomicOperatorParty>
  <cac:TenderingCriterionResponse>
    <cbc:ValidatedCriterionPropertyID>C1/Q1</cbc:ValidatedCriterionPropertyID>
    <cac:ResponseValue><cbc:ResponseIndicator>false</cbc:ResponseIndicator></cac:ResponseValue>
  </cac:TenderingCriterionResponse>
  <cac:TenderingCriterionResponse>
    <cbc:ValidatedCriterionPropertyID>C2/Q1</cbc:ValidatedCriterionPropertyID>
    <cac:ResponseValue><cbc:ResponseAmount currencyID="EUR">1500000.00</cbc:ResponseAmount></cac:ResponseValue>
  </cac:TenderingCriterionResponse>
</QualificationApplicationResponse>""".encode()


def test_siret_only_candidature_carries_siret_and_procedure() -> None:
    pivot = espd.to_pivot(response())
    assert pivot.type == "fr.dcant.procurement.CandidatureSubmitted"
    assert pivot.subject == "notice:2024-MP-017"
    eo = pivot.data["economic_operator"]
    assert (eo["siret"], eo["siren"]) == ("55210055400012", "552100554")
    assert eo["identifier"] == "552 100 554 00012"
    assert pivot.data["issue_date"] == dt.date(2024, 3, 1)
    assert pivot.data["answers"] == [
        {"property_id": "C1/Q1", "value_kind": "ResponseIndicator", "value": "false"},
        {"property_id": "C2/Q1", "value_kind": "ResponseAmount", "value": "1500000.00"},
    ]


def test_foreign_operator_keeps_its_identifier_and_scheme() -> None:
    eo = espd.to_pivot(response(operator_id="BE0123456789", scheme='schemeID="VAT"', country="BEL")).data[
        "economic_operator"
    ]
    assert (eo["identifier"], eo["identifier_scheme"], eo["siret"]) == ("BE0123456789", "VAT", None)


def test_without_procedure_the_subject_falls_back_to_the_company() -> None:
    assert espd.to_pivot(response(folder="")).subject == "company:55210055400012"
    assert espd.to_pivot(response(folder="", operator_id="X1", country="BEL")).subject == "candidature:ESPD-RESP-1"


def test_operator_without_identifier_is_non_conformant() -> None:
    with pytest.raises(NonConformantError) as info:
        espd.to_pivot(response(operator_id=" "))
    assert info.value.context["rule"] == "ESPD-EO-IDENTIFIER"


def test_a_request_is_not_a_candidature() -> None:
    request = response().replace(b"QualificationApplicationResponse", b"QualificationApplicationRequest")
    with pytest.raises(UnknownFormatError):
        espd.to_pivot(request)
    assert espd.detect(Sniff("xml", root_ns=RESPONSE_NS))
    assert not espd.detect(Sniff("xml", root_ns=RESPONSE_NS.replace("Response", "Request")))


@settings(max_examples=150, suppress_health_check=[HealthCheck.too_slow], deadline=None)
@given(st.data())
def test_fuzz_mutated_responses_raise_only_adapter_errors(draw: st.DataObject) -> None:
    base = bytearray(response())
    for _ in range(draw.draw(st.integers(1, 8))):
        pos = draw.draw(st.integers(0, len(base) - 1))
        if draw.draw(st.booleans()):
            base[pos] = draw.draw(st.integers(0, 255))
        else:
            del base[pos : pos + draw.draw(st.integers(1, 40))]
        if not base:
            break
    try:
        espd.to_pivot(bytes(base))
    except AdapterError:
        pass
