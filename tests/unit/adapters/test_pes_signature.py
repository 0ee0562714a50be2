"""PES_Aller signatures: each bordereau signed (enveloped XAdES) when written, verified when read.

Certificates come from the bus's own site CA (:class:`bus._pki.CertificateAuthority`), as an
ordonnateur's would come from its CA; a second CA stands for an untrusted issuer.
"""

from __future__ import annotations

import datetime as dt
from pathlib import Path

import pytest
from cryptography.hazmat.primitives import serialization
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from lxml import etree
from signxml import XMLSigner

from adapters import pes_aller
from adapters._base import Pivot
from adapters._pes_signature import sign_aller
from bus._errors import AdapterError, ConfigurationError, DocumentSignatureError, NonConformantError
from bus._pki import CertificateAuthority

from test_pes_aller import DOC

DS = "http://www.w3.org/2000/09/xmldsig#"


@pytest.fixture(scope="module")
def pivot() -> Pivot:
    return pes_aller.to_pivot(DOC, name="test.xml")


@pytest.fixture(scope="module")
def pki(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    root = tmp_path_factory.mktemp("pki")
    site = CertificateAuthority.init(root / "site").issue("219990017", root / "issued")
    other = CertificateAuthority.init(root / "other", site="other").issue("219990018", root / "other-issued")
    return {"cert": site.certfile, "key": site.keyfile, "ca": site.cafile,
            "other_cert": other.certfile, "other_key": other.keyfile}


@pytest.fixture(scope="module")
def signer(pki: dict[str, Path]) -> pes_aller.PesSigner:
    return pes_aller.PesSigner.from_files(pki["cert"], pki["key"])


@pytest.fixture(scope="module")
def signed(pivot: Pivot, signer: pes_aller.PesSigner) -> bytes:
    return pes_aller.from_pivot(pivot, signer=signer)


def test_each_bordereau_carries_its_xades_signature(signed: bytes) -> None:
    root = etree.fromstring(signed)
    bordereau = root.find("PES_DepenseAller/Bordereau")
    signature = bordereau[-1]
    assert signature.tag == f"{{{DS}}}Signature"
    uris = [r.get("URI") for r in signature.iter(f"{{{DS}}}Reference")]
    assert f"#{bordereau.get('Id')}" in uris
    assert b"urn:oid:1.2.250.1.131.1.5.18.21.1.4" in signed  # the DGFiP Hélios signature policy
    assert b"<xades:ClaimedRole>Ordonnateur</xades:ClaimedRole>" in signed
    assert root.find("PES_DepenseAller/EnTeteDepense/InfoDematerialisee").get("V") == "1"
    assert signed.startswith(b"<?xml version='1.0' encoding='ISO-8859-1'?>")


def test_signed_file_reads_back_with_a_trust_anchor(signed: bytes, pivot: Pivot, pki: dict[str, Path]) -> None:
    back = pes_aller.to_pivot(signed, name="signed.xml", trust=pki["ca"], require_signature=True)
    assert back.warnings == ()
    assert {**back.data, "dematerialised": False} == pivot.data
    assert back.data["dematerialised"] is True


def test_without_a_trust_anchor_the_warning_says_the_chain_was_not_checked(signed: bytes) -> None:
    back = pes_aller.to_pivot(signed, name="signed.xml")
    assert any("chain was not checked" in w and "CN=219990017" in w for w in back.warnings)


@pytest.mark.parametrize(("old", "new"), [
    (b'<MtHT V="1000.00"/>', b'<MtHT V="9000.00"/>'),  # an amount inside the bordereau
    (b'<IdBord V="0000042"/>', b'<IdBord V="0000043"/>'),
    (b"<xades:ClaimedRole>Ordonnateur<", b"<xades:ClaimedRole>Comptable<"),  # a signed XAdES property
])
def test_tampered_signed_file_is_refused_naming_the_bordereau(signed: bytes, old: bytes, new: bytes) -> None:
    assert old in signed
    with pytest.raises(DocumentSignatureError) as caught:
        pes_aller.to_pivots(signed.replace(old, new, 1), name="tampered.xml")
    assert caught.value.context["rule"] == "PES-SIGNATURE"
    assert caught.value.context["xpath"] == "/PES_Aller/PES_DepenseAller/Bordereau[1]/Signature"
    assert "Bordereau[1]" in caught.value.message and "changed after signing" in caught.value.message


def test_signature_by_a_certificate_of_another_ca_is_refused(pivot: Pivot, pki: dict[str, Path]) -> None:
    stranger = pes_aller.PesSigner.from_files(pki["other_cert"], pki["other_key"])
    signed = pes_aller.from_pivot(pivot, signer=stranger)
    assert pes_aller.to_pivot(signed, name="x")  # its integrity holds...
    with pytest.raises(DocumentSignatureError, match="CN=219990018.*does not chain to a CA") as caught:
        pes_aller.to_pivot(signed, name="x", trust=pki["ca"])  # ...but not its chain to the site CA
    assert "trust file" in caught.value.hint


def test_swapped_certificate_is_refused(signed: bytes, pki: dict[str, Path]) -> None:
    root = etree.fromstring(signed)
    other = pki["other_cert"].read_text().split("-----")[2].replace("\n", "")
    root.find(f".//{{{DS}}}X509Certificate").text = other
    with pytest.raises(DocumentSignatureError):
        pes_aller.to_pivots(etree.tostring(root), name="swapped.xml")


def test_signature_that_signs_another_element_is_refused(pivot: Pivot, signer: pes_aller.PesSigner) -> None:
    """A signature in the bordereau that covers the envelope only is a wrapping, not a bordereau signature."""
    written = pes_aller.from_pivot(pivot)
    root = etree.fromstring(written)
    root.find("EnTetePES").set("Id", "H1")
    etree.SubElement(root.find("PES_DepenseAller/Bordereau"), f"{{{DS}}}Signature", Id="placeholder")
    key = signer.key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                                   serialization.NoEncryption())
    cert = signer.certificate.public_bytes(serialization.Encoding.PEM)
    wrapped = XMLSigner(signature_algorithm="ecdsa-sha256").sign(root, key=key, cert=cert, reference_uri="#H1")
    with pytest.raises(DocumentSignatureError, match="does not sign the Bordereau"):
        pes_aller.to_pivots(etree.tostring(wrapped), name="wrapped.xml")


class _Sha1Signer(XMLSigner):
    """An XML-DSig signer that makes SHA-1 signatures, as older parapheurs do (signxml refuses by default)."""

    def check_deprecated_methods(self) -> None:
        pass


def _plain_signed(pivot: Pivot, signer: pes_aller.PesSigner, xml_signer: XMLSigner) -> bytes:
    """The pivot's PES_Aller with a plain XML-DSig (no XAdES) enveloped in its bordereau B1."""
    root = etree.fromstring(pes_aller.from_pivot(pivot))
    etree.SubElement(root.find("PES_DepenseAller/Bordereau"), f"{{{DS}}}Signature", Id="placeholder")
    key = signer.key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                                   serialization.NoEncryption())
    cert = signer.certificate.public_bytes(serialization.Encoding.PEM)
    return etree.tostring(xml_signer.sign(root, key=key, cert=cert, reference_uri="#B1"))


def test_sha1_signature_is_refused(pivot: Pivot, signer: pes_aller.PesSigner) -> None:
    signed = _plain_signed(pivot, signer, _Sha1Signer(signature_algorithm="ecdsa-sha1", digest_algorithm="sha1"))
    with pytest.raises(DocumentSignatureError, match="SHA1|SHA-1|not allowed|sha1"):
        pes_aller.to_pivots(signed, name="sha1.xml")


def test_plain_xmldsig_signature_verifies_with_a_warning(pivot: Pivot, signer: pes_aller.PesSigner) -> None:
    plain = _plain_signed(pivot, signer, XMLSigner(signature_algorithm="ecdsa-sha256"))
    back = pes_aller.to_pivot(plain, name="plain.xml")
    assert any("not XAdES" in w for w in back.warnings)
    assert any("InfoDematerialisee is not 1" in w for w in back.warnings)


def test_unsigned_file_reads_unless_a_signature_is_required(pivot: Pivot) -> None:
    unsigned = pes_aller.from_pivot(pivot)
    assert pes_aller.to_pivot(unsigned, name="u").warnings == ()
    with pytest.raises(DocumentSignatureError) as caught:
        pes_aller.to_pivot(unsigned, name="u", require_signature=True)
    assert caught.value.context["rule"] == "PES-SIGNATURE-MISSING"


def test_unsigned_dematerialised_flux_is_flagged(pivot: Pivot) -> None:
    unsigned = pes_aller.from_pivot({**pivot.data, "dematerialised": True})
    assert any("no bordereau is signed" in w for w in pes_aller.to_pivot(unsigned, name="u").warnings)


def test_signing_needs_the_bordereau_id(pivot: Pivot, signer: pes_aller.PesSigner) -> None:
    with pytest.raises(NonConformantError) as caught:
        pes_aller.from_pivot({**pivot.data, "xml_id": None}, signer=signer)
    assert caught.value.context["rule"] == "PES-SIGNATURE-ID"


def test_signer_files_are_checked(pki: dict[str, Path], tmp_path: Path) -> None:
    with pytest.raises(ConfigurationError, match="not the key of"):
        pes_aller.PesSigner.from_files(pki["cert"], pki["other_key"])
    with pytest.raises(ConfigurationError, match="cannot read the signing certificate"):
        pes_aller.PesSigner.from_files(tmp_path / "missing.crt", pki["key"])
    with pytest.raises(ConfigurationError, match="trust anchor"):
        pes_aller.to_pivots(pes_aller.from_pivot(pes_aller.to_pivot(DOC, name="d"),
                                                 signer=pes_aller.PesSigner.from_files(pki["cert"], pki["key"])),
                            name="s", trust=tmp_path / "none.pem")


def test_expired_certificate_is_refused_with_a_trust_anchor(pivot: Pivot, tmp_path: Path) -> None:
    ca = CertificateAuthority.init(tmp_path / "ca")
    old = ca.issue("219990017", tmp_path / "old", days=1,
                   not_before=dt.datetime.now(dt.UTC) - dt.timedelta(days=30))
    signed = pes_aller.from_pivot(pivot, signer=pes_aller.PesSigner.from_files(old.certfile, old.keyfile))
    with pytest.raises(DocumentSignatureError, match="does not chain to a CA of .* valid now"):
        pes_aller.to_pivot(signed, name="old.xml", trust=ca.cafile)
    with pytest.raises(DocumentSignatureError, match="is not valid now") as caught:  # checked without a CA too
        pes_aller.to_pivot(signed, name="old.xml")
    assert "trust file" not in caught.value.hint


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.too_slow, HealthCheck.function_scoped_fixture])
@given(st.data())
def test_fuzz_mutated_signed_document(signed: bytes, data: st.DataObject) -> None:
    """Any byte changed in a signed file: an AdapterError (most often the signature), never a crash."""
    start = data.draw(st.integers(0, len(signed) - 1))
    insert = data.draw(st.binary(min_size=1, max_size=3))
    mutated = signed[:start] + insert + signed[start + 1:]
    try:
        pes_aller.to_pivots(mutated, name="fuzz.xml")
    except AdapterError:
        pass


def _two_bordereaux(pivot: Pivot) -> bytes:
    written = pes_aller.from_pivot(pivot)
    start, end = written.index(b"<Bordereau "), written.index(b"</Bordereau>") + len(b"</Bordereau>")
    second = written[start:end].replace(b'Id="B1"', b'Id="B2"').replace(b'<IdBord V="0000042"/>', b'<IdBord V="43"/>')
    return written[:end] + second + written[end:]


def test_each_of_several_bordereaux_is_signed_and_verified_on_its_own(pivot: Pivot, signer: pes_aller.PesSigner,
                                                                      pki: dict[str, Path]) -> None:
    signed = sign_aller(_two_bordereaux(pivot), signer, document="two")
    root = etree.fromstring(signed)
    assert [b[-1].tag for b in root.iterfind("PES_DepenseAller/Bordereau")] == [f"{{{DS}}}Signature"] * 2
    assert [p.subject for p in pes_aller.to_pivots(signed, name="two", trust=pki["ca"])] == [
        "bordereau:21310555400017:2024:42", "bordereau:21310555400017:2024:43"]
    with pytest.raises(DocumentSignatureError) as caught:  # the second bordereau changed: named, not the first
        pes_aller.to_pivots(signed.replace(b'<IdBord V="43"/>', b'<IdBord V="44"/>'), name="two")
    assert caught.value.context["xpath"] == "/PES_Aller/PES_DepenseAller/Bordereau[2]/Signature"


def test_signature_of_the_whole_file_is_verified(pivot: Pivot, signer: pes_aller.PesSigner) -> None:
    root = etree.fromstring(pes_aller.from_pivot(pivot))
    etree.SubElement(root, f"{{{DS}}}Signature", Id="placeholder")
    key = signer.key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                                   serialization.NoEncryption())
    cert = signer.certificate.public_bytes(serialization.Encoding.PEM)
    whole = etree.tostring(XMLSigner(signature_algorithm="ecdsa-sha256").sign(root, key=key, cert=cert, reference_uri="#F1"))
    assert pes_aller.to_pivot(whole, name="whole.xml")
    with pytest.raises(DocumentSignatureError) as caught:  # the envelope is covered by a file signature
        pes_aller.to_pivot(whole.replace(b'<Sigle V="EDITEUR"/>', b'<Sigle V="AUTRE"/>'), name="whole.xml")
    assert caught.value.context["xpath"] == "/PES_Aller/Signature"
