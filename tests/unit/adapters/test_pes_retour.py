"""Unit tests of the PES_Retour dépense adapter: mandat states, payments, subject, fuzzing."""

from __future__ import annotations

import datetime as dt

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from adapters import pes_retour
from adapters._registry import sniff
from bus._errors import AdapterError, NonConformantError

NS = "http://www.minefi.gouv.fr/cp/helios/pes_v2/Rev0/retour"

# One mandat paid in two payments, one rejected mandat.
DOC = f"""<?xml version="1.0" encoding="ISO-8859-1"?>
<n:PES_Retour xmlns:n="{NS}">
<Enveloppe><Parametres><Version V="2"/><TypFic V="PESRETOUR_DEP"/><NomFic V="RETOUR_1.xml"/></Parametres></Enveloppe>
<EnTetePES><DteStr V="2024-04-01"/><IdPost V="031000"/><IdColl V="21310555400017"/><CodColl V="001"/><CodBud V="01"/></EnTetePES>
<PES_DepenseRetour>
<EnTeteDepense><TypRestit V="AA"/><IdVer V="2"/><NatInf V="2"/></EnTeteDepense>
<Bordereau>
 <BlocBordereau><Exer V="2024"/><IdBord V="42"/><TypBord V="01"/></BlocBordereau>
 <Piece>
  <InfoPiece><IdPce V="101"/><TypPce V="01"/><NatPce V="01"/><DtePcePec V="2024-03-06"/><EtatPce V="05"/></InfoPiece>
  <LigneDePiece>
   <BlocLignePiece>
    <InfoLignePiece><IdLigne V="1"/><EtatLigPce V="08"/><MtHT V="1000.00"/><MtTVA V="200.00"/></InfoLignePiece>
    <InfoPaiement><NbrPay V="2"/><MtPayTot V="1200.00"/></InfoPaiement>
    <LiensIdent><IdMarche V="2024M0001"/></LiensIdent>
   </BlocLignePiece>
   <Tiers><InfoTiers><IdTiers V="44306184100047"/><CatTiers V="01"/><NatJur V="03"/><Nom V="ROUTES SA"/></InfoTiers></Tiers>
   <PaiementEmargement><OrgEma V="01"/><DtePay V="2024-03-10"/><MtPay V="700.00"/></PaiementEmargement>
   <PaiementEmargement><OrgEma V="01"/><DtePay V="2024-03-20"/><MtPay V="500.00"/></PaiementEmargement>
  </LigneDePiece>
 </Piece>
 <Piece>
  <InfoPiece><IdPce V="102"/><TypPce V="01"/><NatPce V="01"/><EtatPce V="04"/><ObsEtat V="PJ manquante"/><DtePceRej V="2024-03-07"/></InfoPiece>
  <LigneDePiece><BlocLignePiece><InfoLignePiece><IdLigne V="1"/><EtatLigPce V="09"/><MtHT V="100"/></InfoLignePiece></BlocLignePiece></LigneDePiece>
 </Piece>
</Bordereau>
</PES_DepenseRetour>
</n:PES_Retour>
""".encode("iso-8859-1")


def test_detect() -> None:
    assert pes_retour.detect(sniff(DOC))
    assert not pes_retour.detect(sniff(b"<n:PES_ACQUIT xmlns:n='http://www.minefi.gouv.fr/cp/helios/pes_v2/Rev0/retour/v2'/>"))


def test_paid_and_rejected_mandats() -> None:
    pivot = pes_retour.to_pivot(DOC, name="retour.xml")
    assert pivot.type == "fr.dcant.accounting.PesRetourReceived"
    assert pivot.subject == "bordereau:21310555400017:2024:42"
    (bordereau,) = pivot.data["bordereaux"]
    paid, rejected = bordereau["mandats"]
    assert (paid["state"], paid["state_label"], paid["taken_in_charge_date"]) == ("05", "Soldé", dt.date(2024, 3, 6))
    assert (paid["amount_excl_tax"], paid["vat_amount"], paid["paid_amount"]) == ("1000.00", "200.00", "1200.00")
    assert paid["last_payment_date"] == dt.date(2024, 3, 20)
    line = paid["lines"][0]
    assert (line["payment_count"], line["paid_total"], line["contract_id"], line["tiers_id"]) == (2, "1200.00", "2024M0001", "44306184100047")
    assert [p["amount"] for p in line["payments"]] == ["700.00", "500.00"]
    assert (rejected["state_label"], rejected["rejection_date"], rejected["observation"]) == ("Rejeté", dt.date(2024, 3, 7), "PJ manquante")
    assert rejected["paid_amount"] is None and rejected["lines"][0]["state_label"] == "Rejet"


def test_several_bordereaux_key_by_file() -> None:
    start, end = DOC.index(b"<Bordereau>"), DOC.index(b"</Bordereau>") + len(b"</Bordereau>")
    doc = DOC[:end] + DOC[start:end].replace(b'<IdBord V="42"/>', b'<IdBord V="43"/>') + DOC[end:]
    pivot = pes_retour.to_pivot(doc)
    assert pivot.subject == "pes:RETOUR_1.xml"
    assert [b["number"] for b in pivot.data["bordereaux"]] == ["42", "43"]


def test_recette_return_is_refused() -> None:
    with pytest.raises(NonConformantError) as info:
        pes_retour.to_pivot(DOC.replace(b"PES_DepenseRetour>", b"PES_RecetteRetour>"))
    assert info.value.context["rule"] == "PES-DEPENSE"


def test_bad_payment_amount_is_located() -> None:
    with pytest.raises(NonConformantError) as info:
        pes_retour.to_pivot(DOC.replace(b'<MtPay V="500.00"/>', b'<MtPay V="cinq cents"/>'))
    assert info.value.context["xpath"] == "/PES_Retour/PES_DepenseRetour/Bordereau[1]/Piece[1]/LigneDePiece[1]/PaiementEmargement[2]/MtPay"


@settings(max_examples=300, suppress_health_check=[HealthCheck.too_slow], deadline=None)
@given(st.integers(min_value=0, max_value=len(DOC) - 1), st.integers(min_value=0, max_value=40), st.binary(max_size=12))
def test_fuzz_mutated_document(start: int, length: int, insert: bytes) -> None:
    try:
        pes_retour.to_pivot(DOC[:start] + insert + DOC[start + length :], name="fuzz")
    except AdapterError:
        pass


@settings(max_examples=100, deadline=None)
@given(st.binary(max_size=1000))
def test_fuzz_random_bytes(data: bytes) -> None:
    try:
        pes_retour.to_pivot(data)
    except AdapterError:
        pass
