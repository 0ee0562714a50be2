"""Unit tests of the PES_Aller dépense adapter: reading, writing, strictness and fuzzing."""

from __future__ import annotations

import copy
import datetime as dt
import re
from pathlib import Path
from xml.sax.saxutils import quoteattr

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from adapters import pes_aller
from adapters._base import Pivot
from adapters._registry import sniff
from bus._errors import AdapterError, ConfigurationError, MalformedDocumentError, NonConformantError, UnsafeDocumentError

NS = "http://www.minefi.gouv.fr/cp/helios/pes_v2/Rev0/aller"

# Two mandats; the first has two lines (VAT, an invoice, a contract link, an IBAN creditor,
# a DGP block and a PJRef), the second one line with its own tiers.
DOC = f"""<?xml version="1.0" encoding="ISO-8859-1"?>
<n:PES_Aller xmlns:n="{NS}" Id="F1">
 <Enveloppe>
  <Parametres><Version V="2"/><TypFic V="PESALR2"/><NomFic V="PESALR2_test.xml"/></Parametres>
  <Emetteur><Sigle V="EDITEUR"/><Adresse V="APPLI 1.0"/></Emetteur>
 </Enveloppe>
 <EnTetePES>
  <DteStr V="2024-03-01"/><IdPost V="031000"/><IdColl V="21310555400017"/>
  <CodCol V="001"/><CodBud V="01"/><LibelleColBud V="MAIRIE D'ÉTÉ"/>
 </EnTetePES>
 <PES_DepenseAller>
  <EnTeteDepense><IdVer V="2"/><InfoDematerialisee V="0"/></EnTeteDepense>
  <Bordereau Id="B1">
   <BlocBordereau>
    <Exer V="2024"/><IdBord V="0000042"/><DteBordEm V="2024-02-28"/><TypBord V="01"/>
    <NbrPce V="2"/><MtBordHT V="1350.50"/><MtBordTVA V="250.00"/>
   </BlocBordereau>
   <Piece>
    <BlocPiece>
     <InfoPce>
      <IdPce V="101"/><TypPce V="01"/><NatPce V="01"/><Obj V="Travaux voirie"/>
      <PJRef><Support V="01"/><IdUnique V="FAC2024001"/><NomPJ V="facture.pdf"/><TypePJ V="007"/></PJRef>
     </InfoPce>
     <DGP><Dgp V="1"/><DteDebDgp V="2024-02-01"/><DteFinDgp V="2024-03-02"/><DureeDgp V="30"/></DGP>
    </BlocPiece>
    <LigneDePiece>
     <BlocLignePiece>
      <InfoLignePce>
       <IdLigne V="1"/><Nature V="2151"/><Fonction V="822"/><Operation V="12"/><Facture V="F-2024-001"/>
       <TVAIntraCom V="0"/><MtHT V="1000.00"/><MtTVA V="200.00"/><MtFactHT V="1000.00"/>
      </InfoLignePce>
      <LiensIdent><IdMarche V="2024M0001"/></LiensIdent>
     </BlocLignePiece>
     <Tiers>
      <InfoTiers><IdTiers V="44306184100047"/><NatIdTiers V="01"/><CatTiers V="01"/><NatJur V="03"/><Nom V="ROUTES SA"/></InfoTiers>
      <Adresse><TypAdr V="1"/><Adr2 V="1 RUE DU PONT"/><CP V="31000"/><Ville V="TOULOUSE"/><CodRes V="0"/></Adresse>
      <CpteBancaire><BIC V="BNPAFRPPXXX"/><IBAN V="FR7630004000031234567890143"/><TitCpte V="ROUTES SA"/></CpteBancaire>
     </Tiers>
    </LigneDePiece>
    <LigneDePiece>
     <BlocLignePiece>
      <InfoLignePce><IdLigne V="2"/><Nature V="2151"/><TVAIntraCom V="0"/><MtHT V="250.50"/><MtTVA V="50.00"/></InfoLignePce>
     </BlocLignePiece>
     <Tiers>
      <InfoTiers><IdTiers V="44306184100047"/><NatIdTiers V="01"/><CatTiers V="01"/><NatJur V="03"/><Nom V="ROUTES SA"/></InfoTiers>
      <Adresse><TypAdr V="1"/><Adr2 V="1 RUE DU PONT"/><CP V="31000"/><Ville V="TOULOUSE"/><CodRes V="0"/></Adresse>
      <CpteBancaire><BIC V="BNPAFRPPXXX"/><IBAN V="FR7630004000031234567890143"/><TitCpte V="ROUTES SA"/></CpteBancaire>
     </Tiers>
    </LigneDePiece>
   </Piece>
   <Piece>
    <BlocPiece><InfoPce><IdPce V="102"/><TypPce V="01"/><NatPce V="01"/></InfoPce></BlocPiece>
    <LigneDePiece>
     <BlocLignePiece><InfoLignePce><IdLigne V="1"/><Nature V="6068"/><TVAIntraCom V="0"/><MtHT V="100"/></InfoLignePce></BlocLignePiece>
     <Tiers><InfoTiers><CatTiers V="01"/><NatJur V="01"/><Nom V="DUPONT"/><Prenom V="JEAN"/></InfoTiers></Tiers>
    </LigneDePiece>
   </Piece>
  </Bordereau>
 </PES_DepenseAller>
</n:PES_Aller>
""".encode("iso-8859-1")


@pytest.fixture(scope="module")
def pivot() -> Pivot:
    return pes_aller.to_pivot(DOC, name="test.xml")


def test_detect_recognises_pes_aller_only() -> None:
    assert pes_aller.detect(sniff(DOC))
    assert not pes_aller.detect(sniff(b"<Invoice xmlns='urn:oasis:names:specification:ubl:schema:xsd:Invoice-2'/>"))


def test_event_identity(pivot: Pivot) -> None:
    assert pivot.type == "fr.dcant.accounting.BordereauIssued"
    assert pivot.schema == "fr.dcant.accounting.Bordereau"
    # leading zeros of IdBord are dropped in the subject so the acquittement's NumBord matches
    assert pivot.subject == "bordereau:21310555400017:2024:42"
    assert pivot.data["number"] == "0000042"
    assert pivot.warnings == ()


def test_header_and_bordereau_values(pivot: Pivot) -> None:
    data = pivot.data
    assert data["header"]["budget_label"] == "MAIRIE D'ÉTÉ"
    assert data["header"]["structure_date"] == dt.date(2024, 3, 1)
    assert (data["exercise"], data["type"], data["issue_date"]) == (2024, "01", dt.date(2024, 2, 28))
    assert (data["total_excl_tax"], data["total_vat"], data["piece_count"]) == ("1350.50", "250.00", 2)
    assert data["dematerialised"] is False


def test_mandat_amounts_invoices_and_creditor(pivot: Pivot) -> None:
    first, second = pivot.data["mandats"]
    assert (first["id"], first["object"], first["issue_date"]) == ("101", "Travaux voirie", dt.date(2024, 2, 28))
    assert (first["amount_excl_tax"], first["vat_amount"], first["amount_incl_tax"]) == ("1250.50", "250.00", "1500.50")
    assert first["invoices"] == [
        {"number": "F-2024-001", "line_id": "1", "amount_excl_tax": "1000.00", "seller_id": "44306184100047", "seller_name": "ROUTES SA"}
    ]
    assert first["creditor"]["bank_account"]["iban"] == "FR7630004000031234567890143"
    assert first["creditor"]["address"]["city"] == "TOULOUSE"
    assert [ligne["tiers"] for ligne in first["lignes"]] == [None, None]  # same creditor on both lines
    assert first["lignes"][0]["imputation"] == {"nature": "2151", "function": "822", "operation": "12", "analytic_account": None}
    assert first["lignes"][0]["contract_id"] == "2024M0001"
    assert first["payment_delay"] == {
        "eligible": True, "start_date": dt.date(2024, 2, 1), "end_date": dt.date(2024, 3, 2),
        "days": 30, "interest_code": None, "interest_rate": None,
    }
    assert first["attachments"][0]["unique_id"] == "FAC2024001"
    assert second["vat_amount"] is None and second["amount_incl_tax"] == "100"
    assert second["creditor"]["first_name"] == "JEAN"


def test_round_trip_keeps_every_pivot_field(pivot: Pivot) -> None:
    written = pes_aller.from_pivot(pivot)
    assert written.startswith(b"<?xml version='1.0' encoding='ISO-8859-1'?>")
    assert "MAIRIE D'ÉTÉ".encode("iso-8859-1") in written
    assert pes_aller.to_pivot(written, name="again").data == pivot.data


def test_characters_outside_latin1_survive_as_references(pivot: Pivot) -> None:
    data = copy.deepcopy(dict(pivot.data))
    data["mandats"][0]["object"] = "Œuvre 100 €"
    written = pes_aller.from_pivot(data)
    assert b"&#338;uvre 100 &#8364;" in written
    assert pes_aller.to_pivot(written).data["mandats"][0]["object"] == "Œuvre 100 €"


def test_warns_about_inconsistent_totals() -> None:
    doc = DOC.replace(b'<MtBordHT V="1350.50"/>', b'<MtBordHT V="9.99"/>').replace(b'<NbrPce V="2"/>', b'<NbrPce V="3"/>')
    warnings = pes_aller.to_pivot(doc).warnings
    assert any("MtBordHT is 9.99" in w and "1350.50" in w for w in warnings)
    assert any("NbrPce is 3" in w for w in warnings)


def test_writer_computes_null_totals(pivot: Pivot) -> None:
    data = copy.deepcopy(dict(pivot.data))
    data.update(total_excl_tax=None, piece_count=None)
    for mandat in data["mandats"]:
        mandat.update(amount_excl_tax=None, vat_amount=None, amount_incl_tax=None)
    again = pes_aller.to_pivot(pes_aller.from_pivot(data)).data
    assert (again["total_excl_tax"], again["piece_count"]) == ("1350.50", 2)
    assert again["mandats"][0]["amount_incl_tax"] == "1500.50"


@pytest.mark.parametrize(
    ("path", "value", "rule"),
    [
        (("mandats", 0, "amount_excl_tax"), "1.00", "PES-MANDAT-TOTAL"),
        (("mandats", 0, "issue_date"), dt.date(2020, 1, 1), "PES-MANDAT-DATE"),
        (("mandats", 0, "lignes", 0, "amount_excl_tax"), "12,5", "PES-AMOUNT"),
        (("mandats", 0, "lignes", 0, "imputation", "nature"), None, "PES-WRITE"),
        (("mandats", 0, "creditor", "legal_nature"), None, "PES-WRITE"),
        (("mandats", 0, "creditor", "bank_account", "iban"), None, "PES-BANK"),
        (("mandats", 0, "invoices", 0, "line_id"), "9", "PES-INVOICE-LINE"),
        (("xml_id",), "1-not-an-id", "PES-ID"),
        (("mandats", 0, "object"), "bad\x00char", "PES-CHARACTERS"),
    ],
)
def test_writer_is_strict(pivot: Pivot, path: tuple, value: object, rule: str) -> None:
    data = copy.deepcopy(dict(pivot.data))
    target = data
    for key in path[:-1]:
        target = target[key]
    target[path[-1]] = value
    with pytest.raises(NonConformantError) as info:
        pes_aller.from_pivot(data)
    assert info.value.context["rule"] == rule


def test_writer_refuses_other_pivots() -> None:
    other = Pivot(type="x", schema="fr.dcant.invoices.Invoice", subject="invoice:1:2", data={}, format="ubl")
    with pytest.raises(NonConformantError, match="cannot write"):
        pes_aller.from_pivot(other)


def test_several_bordereaux() -> None:
    start = DOC.index(b"<Bordereau ")
    end = DOC.index(b"</Bordereau>") + len(b"</Bordereau>")
    second = DOC[start:end].replace(b'Id="B1"', b'Id="B2"').replace(b'<IdBord V="0000042"/>', b'<IdBord V="43"/>')
    doc = DOC[:end] + second + DOC[end:]
    pivots = pes_aller.to_pivots(doc)
    assert [p.subject for p in pivots] == ["bordereau:21310555400017:2024:42", "bordereau:21310555400017:2024:43"]
    with pytest.raises(NonConformantError) as info:
        pes_aller.to_pivot(doc)
    assert info.value.context["rule"] == "PES-ONE-BORDEREAU"


@pytest.mark.parametrize(
    ("old", "new", "rule", "xpath"),
    [
        (b'<IdPce V="102"/>', b"", "PES-REQUIRED", "/PES_Aller/PES_DepenseAller/Bordereau[1]/Piece[2]/BlocPiece/InfoPce/IdPce"),
        (b'<MtHT V="250.50"/>', b'<MtHT V="250,50"/>', "PES-AMOUNT", "/PES_Aller/PES_DepenseAller/Bordereau[1]/Piece[1]/LigneDePiece[2]/BlocLignePiece/InfoLignePce/MtHT"),
        (b'<DteBordEm V="2024-02-28"/>', b'<DteBordEm V="28/02/2024"/>', "PES-DATE", "/PES_Aller/PES_DepenseAller/Bordereau[1]/BlocBordereau/DteBordEm"),
        (b'<Exer V="2024"/>', b'<Exer V="deux mille"/>', "PES-INTEGER", "/PES_Aller/PES_DepenseAller/Bordereau[1]/BlocBordereau/Exer"),
        (b'<TVAIntraCom V="0"/><MtHT V="100"/>', b'<TVAIntraCom V="non"/><MtHT V="100"/>', "PES-BOOLEAN", "/PES_Aller/PES_DepenseAller/Bordereau[1]/Piece[2]/LigneDePiece[1]/BlocLignePiece/InfoLignePce/TVAIntraCom"),
    ],
)
def test_reader_locates_bad_values(old: bytes, new: bytes, rule: str, xpath: str) -> None:
    assert old in DOC
    with pytest.raises(NonConformantError) as info:
        pes_aller.to_pivot(DOC.replace(old, new, 1), name="bad.xml")
    assert info.value.context == {"document": "bad.xml", "rule": rule, "xpath": xpath}


def test_reader_refuses_other_roots_and_recette_only_files() -> None:
    with pytest.raises(NonConformantError) as info:
        pes_aller.to_pivot(b"<PES_ACQUIT/>")
    assert info.value.context["rule"] == "PES-ROOT"
    recette = DOC.replace(b"PES_DepenseAller>", b"PES_RecetteAller>")
    with pytest.raises(NonConformantError) as info:
        pes_aller.to_pivot(recette)
    assert info.value.context["rule"] == "PES-DEPENSE"


def test_hostile_documents() -> None:
    with pytest.raises(UnsafeDocumentError):
        pes_aller.to_pivot(b'<!DOCTYPE x [<!ENTITY e "x">]><n:PES_Aller xmlns:n="' + NS.encode() + b'">&e;</n:PES_Aller>')
    with pytest.raises(MalformedDocumentError):
        pes_aller.to_pivot(DOC[:-40])


@settings(max_examples=150, suppress_health_check=[HealthCheck.too_slow], deadline=None)
@given(st.binary(max_size=2000))
def test_fuzz_random_bytes(data: bytes) -> None:
    try:
        pes_aller.to_pivots(data, name="fuzz")
    except AdapterError:
        pass


@settings(max_examples=300, suppress_health_check=[HealthCheck.too_slow], deadline=None)
@given(st.integers(min_value=0, max_value=len(DOC) - 1), st.integers(min_value=0, max_value=40), st.binary(max_size=12))
def test_fuzz_mutated_document(start: int, length: int, insert: bytes) -> None:
    try:
        pes_aller.to_pivots(DOC[:start] + insert + DOC[start + length :], name="fuzz")
    except AdapterError:
        pass


_VALUES = st.one_of(st.none(), st.text(max_size=12), st.sampled_from(["", "0", "1", "-1", "1e5", "2024-13-40", " 12.5 "]))
_TAGS = sorted(set(re.findall(rb'<(\w+) V="', DOC)))


@settings(max_examples=300, suppress_health_check=[HealthCheck.too_slow], deadline=None)
@given(st.lists(st.tuples(st.sampled_from(_TAGS), _VALUES), max_size=4))
def test_fuzz_attribute_values(changes: list[tuple[bytes, str | None]]) -> None:
    """Replace the V of some elements with arbitrary text (None: remove the V): only
    AdapterError escapes, and whatever is read is written back or refused with an AdapterError."""
    doc = DOC
    for tag, value in changes:
        marker = b"<" + tag + b' V="'
        if marker not in doc:  # its V was already removed by an earlier change
            continue
        at = doc.index(marker) + len(marker) - 3  # the V of the attribute
        end = doc.index(b'"', at + 3) + 1
        if value is None:
            doc = doc[:at] + b"X" + doc[at + 1 :]
        else:
            doc = doc[:at] + b"V=" + quoteattr(value).encode("iso-8859-1", "xmlcharrefreplace") + doc[end:]
    try:
        for pivot in pes_aller.to_pivots(doc, name="fuzz"):
            pes_aller.from_pivot(pivot)
    except AdapterError:
        pass


def test_validate_refuses_schema_locations_outside_the_package(tmp_path: Path) -> None:
    rev0 = tmp_path / "accounting" / "pes-xsd-v5.17" / "PES_V2" / "Rev0"
    rev0.mkdir(parents=True)
    (tmp_path / "outside.xsd").write_text('<xs:schema xmlns:xs="http://www.w3.org/2001/XMLSchema"/>')
    (rev0 / "PES_Aller.xsd").write_text(
        '<xs:schema xmlns:xs="http://www.w3.org/2001/XMLSchema">'
        '<xs:include schemaLocation="../../../../outside.xsd"/><xs:element name="a"/></xs:schema>'
    )
    with pytest.raises(ConfigurationError, match="cannot compile"):
        pes_aller.validate(b"<a/>", schema_dir=tmp_path)


def test_validate_names_the_missing_package(tmp_path: Path) -> None:
    with pytest.raises(ConfigurationError) as info:
        pes_aller.validate(DOC, schema_dir=tmp_path)
    assert "pes-xsd-v5.17" in info.value.hint
