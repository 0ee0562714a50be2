"""XAdES signatures of PES_Aller bordereaux: signed when the bus writes, verified when it reads.

Hélios takes a dematerialised dépense flux only when each bordereau carries an enveloped
XML-DSig signature with XAdES signed properties (the DGFiP signature policy, "Politique de
signature Helios de la DGFiP", ``urn:oid:1.2.250.1.131.1.5.18.21.1.4``), placed as the last
child of ``Bordereau`` and referencing it by its ``Id``. Both directions use ``signxml``:

- :func:`sign_aller` signs every bordereau with :class:`PesSigner`'s key and X.509
  certificate (XAdES-EPES: signing time, signing certificate digest, the DGFiP policy, the
  claimed role) and sets ``EnTeteDepense/InfoDematerialisee`` to 1, since Hélios rejects a
  signed flux that says otherwise. The result still validates against the PES V2 XSD v5.17
  (``ds:Object`` content is ``lax`` there, so the XAdES 1.3.2 properties signxml writes pass).
- :func:`verify_aller` checks every ``ds:Signature`` under the root or a ``Bordereau``: the
  signature value, every reference digest, that the signature covers the element it sits in
  (no signature wrapping), and for XAdES 1.3.2 the signing-certificate digest. With a trust
  anchor (a CA PEM file) the certificate chain is checked too; without one, the signature is
  checked against the certificate it carries and a warning says the chain was not. A failure
  is a :class:`~bus._errors.DocumentSignatureError` naming the bordereau and what failed.

Signatures made with SHA-1 (older parapheurs) are refused, as signxml refuses them by default:
a forged SHA-1 signature is within reach. XAdES 1.1.1 signed properties (the namespace the PES
XSD ships) are verified as XML-DSig references only; their certificate digest is not checked,
and a warning says so.
"""

from __future__ import annotations

import base64
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

from cryptography import x509
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec, rsa
from lxml import etree
from signxml import DigestAlgorithm, SignatureConfiguration, SignatureMethod, XMLVerifier
from signxml.exceptions import InvalidCertificate, InvalidDigest
from signxml.xades import XAdESSignatureConfiguration, XAdESSignaturePolicy, XAdESSigner, XAdESVerifier

from bus._errors import ConfigurationError, DocumentSignatureError, NonConformantError

__all__ = ["HELIOS_POLICY", "PesSigner", "SignatureCheck", "sign_aller", "verify_aller"]

DS = "http://www.w3.org/2000/09/xmldsig#"
XADES_132 = "http://uri.etsi.org/01903/v1.3.2#"
#: The DGFiP signature policy for Hélios (identifier, description and SHA-1 of the policy PDF, as published).
HELIOS_POLICY = XAdESSignaturePolicy(
    Identifier="urn:oid:1.2.250.1.131.1.5.18.21.1.4",
    Description="Politique de signature Helios de la DGFiP",
    DigestMethod=DigestAlgorithm.SHA1,
    DigestValue="Jkdb+aba0Hz6+ZPKmKNhPByzQ+Q=",
)


@dataclass(frozen=True)
class PesSigner:
    """The ordonnateur's signing key and X.509 certificate (with its chain), and the role it claims."""

    key: ec.EllipticCurvePrivateKey | rsa.RSAPrivateKey
    certificate: x509.Certificate
    chain: tuple[x509.Certificate, ...] = ()
    claimed_role: str = "Ordonnateur"

    @classmethod
    def from_files(cls, certfile: Path, keyfile: Path, *, passphrase: bytes | None = None,
                   claimed_role: str = "Ordonnateur") -> PesSigner:
        """Load a PEM certificate file (the signer's first, then its chain) and a PEM private key."""
        try:
            certs = x509.load_pem_x509_certificates(Path(certfile).read_bytes())
        except (OSError, ValueError) as exc:
            raise ConfigurationError(f"cannot read the signing certificate {certfile}: {type(exc).__name__}",
                                     hint="give a PEM certificate, e.g. one from `bus pki issue SIREN`") from exc
        try:
            key = serialization.load_pem_private_key(Path(keyfile).read_bytes(), passphrase)
        except (OSError, TypeError, ValueError) as exc:
            raise ConfigurationError(f"cannot open the signing key {keyfile}: unreadable, or wrong or missing passphrase",
                                     hint="give the PEM key of the certificate; set BUS_KEY_PASSPHRASE when it is encrypted") from exc
        if not isinstance(key, (ec.EllipticCurvePrivateKey, rsa.RSAPrivateKey)):
            raise ConfigurationError(f"the signing key {keyfile} is neither RSA nor EC", hint="sign with an RSA or EC key")
        if key.public_key().public_numbers() != certs[0].public_key().public_numbers():
            raise ConfigurationError(f"the signing key {keyfile} is not the key of {certfile}",
                                     hint="give the key issued with that certificate")
        return cls(key=key, certificate=certs[0], chain=tuple(certs[1:]), claimed_role=claimed_role)


def _xades_signer(signer: PesSigner) -> XAdESSigner:
    method = SignatureMethod.RSA_SHA256 if isinstance(signer.key, rsa.RSAPrivateKey) else SignatureMethod.ECDSA_SHA256
    # signxml's default canonicalisation (C14N 1.1), not the exclusive C14N parapheurs often use:
    # signxml writes the SignedProperties and KeyInfo references without ds:Transforms, so every
    # verifier (signxml included) digests them with the default inclusive C14N; signed with exclusive
    # C14N their digests no longer match (signxml 5.2, checked), with C14N 1.1 they are the same bytes.
    return XAdESSigner(signature_policy=HELIOS_POLICY, claimed_roles=[signer.claimed_role],
                       signature_algorithm=method, digest_algorithm=DigestAlgorithm.SHA256)


def sign_aller(data: bytes, signer: PesSigner, *, document: str) -> bytes:
    """``data`` (a PES_Aller) with an enveloped XAdES signature in every bordereau, in ISO-8859-1.

    Every bordereau needs an ``Id`` (the pivot's ``xml_id``): the signature references it.
    """
    root = etree.fromstring(data, etree.XMLParser(resolve_entities=False, no_network=True))
    depense = root.find("PES_DepenseAller")
    bordereaux = depense.findall("Bordereau") if depense is not None else []
    missing = [i for i, b in enumerate(bordereaux, start=1) if not b.get("Id")]
    if missing:
        raise NonConformantError(
            f"Bordereau[{missing[0]}] has no Id, which its signature must reference", document=document,
            rule="PES-SIGNATURE-ID", xpath=f"/PES_Aller/PES_DepenseAller/Bordereau[{missing[0]}]/@Id",
            hint="set the pivot's xml_id (an XML NCName, unique in the file) before signing")
    entete = depense.find("EnTeteDepense") if depense is not None else None
    if entete is not None:
        flag = entete.find("InfoDematerialisee")
        if flag is None:
            flag = etree.SubElement(entete, "InfoDematerialisee")
        flag.set("V", "1")
    chain = [c.public_bytes(serialization.Encoding.PEM) for c in (signer.certificate, *signer.chain)]
    key = signer.key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                                   serialization.NoEncryption())
    for index in range(len(bordereaux)):
        # signxml signs a copy and returns it: find the bordereau again in the latest tree.
        bordereau = root.findall("PES_DepenseAller/Bordereau")[index]
        etree.SubElement(bordereau, f"{{{DS}}}Signature", Id="placeholder", nsmap={"ds": DS})
        root = _xades_signer(signer).sign(root, key=key, cert=chain, reference_uri=f"#{bordereau.get('Id')}")
    return etree.tostring(root, xml_declaration=True, encoding="ISO-8859-1")


@dataclass(frozen=True)
class SignatureCheck:
    """What :func:`verify_aller` found: how many signatures verified, and what the reader should know."""

    verified: int = 0
    warnings: tuple[str, ...] = field(default=())


def _signatures(root: etree._Element) -> Iterator[tuple[etree._Element, str, str]]:
    """Each (signed element, signxml location of its signature, XPath for errors)."""
    if root.find(f"{{{DS}}}Signature") is not None:
        yield root, "./", "/PES_Aller"
    for depense in root.findall("PES_DepenseAller"):
        for index, bordereau in enumerate(depense.findall("Bordereau"), start=1):
            if bordereau.find(f"{{{DS}}}Signature") is not None:
                yield bordereau, f"./PES_DepenseAller/Bordereau[{index}]/", f"/PES_Aller/PES_DepenseAller/Bordereau[{index}]"


def verify_aller(data: bytes, root: etree._Element, *, name: str, trust: Path | None = None,
                 require: bool = False) -> SignatureCheck:
    """Verify every signature of the PES_Aller ``root`` (parsed from ``data``).

    ``trust``: a PEM file of trusted CA certificates; without it the chain is not checked and a
    warning says so. ``require``: an unsigned file is a :class:`DocumentSignatureError`.
    """
    found = list(_signatures(root))
    dematerialised = root.find("PES_DepenseAller/EnTeteDepense/InfoDematerialisee")
    if not found:
        if require:
            raise DocumentSignatureError("the PES_Aller carries no signature", document=name, rule="PES-SIGNATURE-MISSING",
                                         xpath="/PES_Aller/PES_DepenseAller/Bordereau/Signature",
                                         hint="have the ordonnateur sign each bordereau (XAdES), or read it without "
                                              "--require-signature")
        if dematerialised is not None and dematerialised.get("V") == "1":
            return SignatureCheck(warnings=("EnTeteDepense/InfoDematerialisee is 1 but no bordereau is signed: "
                                            "Hélios rejects such a flux",))
        return SignatureCheck()
    if trust is not None and not Path(trust).is_file():
        raise ConfigurationError(f"the trust anchor file {trust} does not exist",
                                 hint="give a PEM file of the CA certificates that may issue ordonnateurs' certificates")
    warnings: list[str] = []
    for element, location, xpath in found:
        warnings += _verify_one(data, element, location, xpath, name=name, trust=trust)
    if dematerialised is None or dematerialised.get("V") != "1":
        warnings.append("the flux is signed but EnTeteDepense/InfoDematerialisee is not 1: Hélios rejects such a flux")
    return SignatureCheck(verified=len(found), warnings=tuple(warnings))


def _verify_one(data: bytes, element: etree._Element, location: str, xpath: str, *, name: str,
                trust: Path | None) -> list[str]:
    signature = element.find(f"{{{DS}}}Signature")
    where = f"{xpath}/Signature"

    def failed(what: str, hint: str = "the bordereau was changed after signing, or signed with another key: "
                                      "ask the ordonnateur for the file as signed") -> DocumentSignatureError:
        return DocumentSignatureError(f"the signature of {xpath} does not verify: {what}", document=name,
                                      rule="PES-SIGNATURE", xpath=where, hint=hint)

    cert = _carried_certificate(signature)
    if cert is None:
        raise failed("it carries no X509Certificate in KeyInfo")
    xades = signature.find(f".//{{{XADES_132}}}SignedProperties") is not None
    anchor: dict[str, object] = {"ca_pem_file": str(trust)} if trust is not None else {"x509_cert": cert}
    try:
        if xades:
            results = XAdESVerifier().verify(data, expect_config=XAdESSignatureConfiguration(location=location),
                                             **anchor)  # type: ignore[arg-type]
        else:
            results = XMLVerifier().verify(data, expect_config=SignatureConfiguration(
                location=location, expect_references=True), **anchor)  # type: ignore[arg-type]
    except InvalidCertificate as exc:
        anchor_text = f"does not chain to a CA of {trust} valid now" if trust is not None else "is not valid now"
        raise failed(f"its certificate ({cert.subject.rfc4514_string()}) {anchor_text} ({str(exc).splitlines()[0]})",
                     hint=("add the signer's CA to the trust file (BUS_PES_TRUST_CA, --trust-ca), or " if trust else "")
                     + "ask for the file signed with a certificate valid today") from exc
    except InvalidDigest as exc:
        raise failed(f"a signed part changed after signing ({str(exc).splitlines()[0]})") from exc
    # A mangled signature makes signxml fail in many ways besides its own exceptions: lxml syntax
    # errors when it re-parses, KeyError for an unknown curve URI, cryptography's UnsupportedAlgorithm...
    # (found by the fuzz test). Each is this document's signature failing, never a bug to crash on.
    except Exception as exc:  # noqa: BLE001
        raise failed(str(exc).splitlines()[0] or type(exc).__name__) from exc
    signed = [r.signed_xml for r in (results if isinstance(results, list) else [results])]
    local, ident = etree.QName(element).localname, element.get("Id")
    if not any(s is not None and etree.QName(s).localname == local and s.get("Id") == ident for s in signed):
        raise failed(f"it does not sign the {local} it sits in (Id={ident})")
    subject = cert.subject.rfc4514_string()
    warnings = []
    if not xades:
        warnings.append(f"{where} is not XAdES v1.3.2: its references verify, its signing-certificate digest was not checked")
    if trust is None:
        warnings.append(f"{where} verifies against the certificate it carries ({subject}); its chain was not checked "
                        "(no trust anchor given)")
    return warnings


def _carried_certificate(signature: etree._Element) -> x509.Certificate | None:
    text = signature.findtext(f"{{{DS}}}KeyInfo/{{{DS}}}X509Data/{{{DS}}}X509Certificate")
    if not text:
        return None
    try:
        return x509.load_der_x509_certificate(base64.b64decode("".join(text.split())))
    except ValueError:
        return None
