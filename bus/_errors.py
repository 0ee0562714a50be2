"""The one error tree of the bus.

Every failure the bus raises on purpose is a :class:`BusError`. Each carries the
context needed to act on it (topic, partition, offset, document, xpath, rule) and a
``hint`` that tells the reader what to do next. Library exceptions are wrapped with
``raise ... from exc`` so the cause is kept but never leaks a secret into the message.

    BusError
    ├── ConfigurationError ............ a setting is missing or wrong
    ├── ContentNotFoundError .......... a claim check names content the store does not hold
    ├── BrokerError ................... the embedded broker cannot start, stop or answer
    ├── AdapterError .................. a native document cannot become a pivot event
    │   ├── UnknownFormatError ........ no adapter recognises the document
    │   ├── DocumentTooLargeError ..... bigger than the configured bound
    │   ├── UnsafeDocumentError ....... DTD, entity declaration, external reference
    │   ├── MalformedDocumentError .... not well formed, wrong encoding, truncated
    │   ├── NonConformantError ........ well formed but breaks the XSD or a business rule
    │   └── DocumentSignatureError .... the document's own signature (XAdES) does not verify
    ├── SchemaError ................... the Avro side of the contract
    │   ├── UnknownSchemaError ........ fingerprint or name not in the catalog
    │   ├── PayloadDecodeError ........ bytes are not single-object Avro of that schema
    │   ├── PayloadEncodeError ........ a value does not fit its schema
    │   └── IncompatibleSchemaError ... a new version breaks the declared compatibility
    ├── EnvelopeError ................. a CloudEvents header is missing or malformed
    ├── SecurityError ................. signatures, keys and the broker's trust
    │   ├── AuthenticationError ....... the broker refused this client's certificate or password
    │   ├── AuthorizationError ........ the broker refused this principal an operation (no ACL)
    │   ├── UnknownKeyError ........... the signing key is not in the key directory
    │   ├── KeyNotValidError .......... the key was not valid at the event's time
    │   ├── NoValidKeyError ........... no signing key of the source is valid at the event's time
    │   ├── SignatureError ............ the signature does not match the bytes
    │   ├── DecryptionError ........... an addressed event's verified ciphertext does not decrypt (GCM tag)
    │   │   ├── NotARecipientError .... the reader holds no key of the event's recipients (passes unread)
    │   │   ├── EncapsulationError .... the HPKE encapsulation in the reader's slot is not to the reader's key
    │   │   ├── SwappedKeyError ....... the reader's wrapped key sits in another recipient's slot
    │   │   └── TruncatedCiphertextError the sealed payload or a document stream stops short
    │   ├── ActorTokenError ........... an agent's ID token refused at publication (nothing is sent)
    │   │   ├── ExpiredActorTokenError  past its ``exp`` (or not yet valid: ``nbf``, ``iat`` ahead)
    │   │   ├── UnconfiguredIssuerError issued by an identity provider not in BUS_OIDC_ISSUERS
    │   │   ├── ActorSignatureError ... not signed by a key of the issuer's published JWKS
    │   │   └── ActorClaimsError ...... another audience, no ``sub``, or not a JWS at all
    │   ├── RegistrationRefusedError .. the authority will not approve: the SIREN fails the reference check
    │   └── UntrustedKeyError ......... the key does not chain to the trust anchor at the event's time
    │       ├── UnapprovedKeyError .... self-registered: no approval by the authority covers that time
    │       ├── RevokedKeyError ....... revoked by the authority at or before that time
    │       ├── ForgedRegistrationError a registration whose id, proof or approved digest does not match
    │       └── ForgedApprovalError ... an approval, revocation or authority record not signed by the chain
    ├── ErasureError .................. crypto-shredding of a dossier's personal data (:mod:`bus._erasure`)
    │   ├── UnknownDossierError ....... no data key is held for that dossier: nothing to erase
    │   └── ErasedDossierError ........ the dossier's key was destroyed: no new personal data goes under it
    └── DeliveryError ................. producing or consuming
        ├── BrokerUnavailableError .... no broker answers at the bootstrap address
        ├── DuplicateEventError ....... a ``ce_id`` already processed
        ├── RecordTooLargeError ....... the record exceeds the topic's bound
        └── HandlerError .............. a consumer handler failed (wraps the cause)
"""

from __future__ import annotations

from typing import Any

__all__ = [
    "ActorClaimsError",
    "ActorSignatureError",
    "ActorTokenError",
    "AdapterError",
    "AuthenticationError",
    "AuthorizationError",
    "BrokerError",
    "BrokerUnavailableError",
    "BusError",
    "ConfigurationError",
    "ContentNotFoundError",
    "DecryptionError",
    "DeliveryError",
    "DocumentSignatureError",
    "DocumentTooLargeError",
    "DuplicateEventError",
    "EncapsulationError",
    "EnvelopeError",
    "ErasedDossierError",
    "ErasureError",
    "ExpiredActorTokenError",
    "ForeignSourceError",
    "ForgedApprovalError",
    "ForgedRegistrationError",
    "HandlerError",
    "IncompatibleSchemaError",
    "KeyNotValidError",
    "MalformedDocumentError",
    "NoValidKeyError",
    "NonConformantError",
    "NotARecipientError",
    "PayloadDecodeError",
    "PayloadEncodeError",
    "ProfileRefusedError",
    "RecordTooLargeError",
    "RegistrationRefusedError",
    "RevokedKeyError",
    "SchemaError",
    "SecurityError",
    "SignatureError",
    "SwappedKeyError",
    "TruncatedCiphertextError",
    "UnapprovedKeyError",
    "UnapprovedProfileError",
    "UnconfiguredIssuerError",
    "UnknownDossierError",
    "UnknownFormatError",
    "UnknownKeyError",
    "UnknownSchemaError",
    "UnsafeDocumentError",
    "UnsafeProfileError",
    "UntrustedKeyError",
    "WithheldPersonalDataError",
]


class BusError(Exception):
    """Root of every error the bus raises on purpose.

    ``message`` says what went wrong, ``hint`` what to do about it, ``context`` where
    (topic, partition, offset, document, xpath, rule...). ``str(err)`` joins them in one line.
    """

    default_hint = "see the message above"

    def __init__(self, message: str, *, hint: str | None = None, **context: Any) -> None:
        super().__init__(message)
        self.message = message
        self.hint = hint or self.default_hint
        self.context = {k: v for k, v in context.items() if v is not None}

    def __str__(self) -> str:
        where = ", ".join(f"{k}={v}" for k, v in self.context.items())
        text = self.message + (f" [{where}]" if where else "")
        return f"{text} — {self.hint}"

    def to_headers(self) -> dict[str, str]:
        """The error as dead-letter header values (class, message, hint, context)."""
        out = {"error_class": type(self).__name__, "error_message": self.message, "error_hint": self.hint}
        for key, value in self.context.items():
            out[f"error_{key}"] = str(value)
        return out


class ConfigurationError(BusError):
    default_hint = "check the BUS_* environment variables (bus --help lists them)"


class ContentNotFoundError(BusError):
    default_hint = "the document was never stored here, or the content store points at another folder (BUS_CONTENT_STORE)"


class BrokerError(BusError):
    default_hint = "run `bus broker logs` to see what Kafka said"


class AdapterError(BusError):
    """A native document cannot become a pivot event. Context: document, format, xpath, rule."""

    default_hint = "check that the document is the format it claims to be"


class UnknownFormatError(AdapterError):
    default_hint = "pass --format explicitly (bus adapt --help lists the formats)"


class DocumentTooLargeError(AdapterError):
    default_hint = "send large documents by claim check (content store) or raise BUS_MAX_DOCUMENT_BYTES"


class UnsafeDocumentError(AdapterError):
    default_hint = "remove the DOCTYPE / entity declarations: the bus never expands or fetches them"


class MalformedDocumentError(AdapterError):
    default_hint = "fix the document so it is well formed in its declared encoding"


class NonConformantError(AdapterError):
    default_hint = "fix the element named by the rule and send the document again"


class UnsafeProfileError(AdapterError):
    """An archiving profile (RelaxNG) that reaches outside itself (include, externalRef) or does not compile."""

    default_hint = "publish a self-contained RelaxNG: inline every included grammar, no include or externalRef"


class UnapprovedProfileError(AdapterError):
    """No version of the archiving profile is approved by the archive service the transfer goes to."""

    default_hint = "the archive service approves a published version with `bus profiles approve ID VERSION`"


class ProfileRefusedError(AdapterError):
    """A transfer that does not follow its approved archiving profile; ``element`` names the failing one."""

    default_hint = "fix the element named so the transfer follows the archive service's approved profile"


class DocumentSignatureError(AdapterError):
    """A document signed inside (a PES_Aller bordereau's XAdES signature) whose signature does not verify."""

    default_hint = "ask the sender for the document exactly as it was signed"


class SchemaError(BusError):
    default_hint = "run `bus schemas list` to see the catalogued schemas"


class UnknownSchemaError(SchemaError):
    default_hint = "the producer used a schema this catalog does not know: upgrade the bus or replay the catalog topic"


class PayloadDecodeError(SchemaError):
    default_hint = "the payload is not Avro single-object encoding of the announced schema; inspect it with `bus dlq show`"


class PayloadEncodeError(SchemaError):
    default_hint = "the value does not match the pivot schema: compare it with `bus schemas show NAME`"


class IncompatibleSchemaError(SchemaError):
    default_hint = "make the change additive (new fields with defaults) or bump to a new schema name with an upcast step"


class EnvelopeError(BusError):
    default_hint = "the record must carry the CloudEvents ce_* headers of the bus wire contract (DESIGN §3)"


class ErasureError(BusError):
    """Erasure by destroying a dossier's data key. Context: ``dossier`` (the ``ce_subject``)."""

    default_hint = "`bus erase --help` says how a dossier's personal data is erased"


class UnknownDossierError(ErasureError):
    """``bus erase`` names a dossier whose personal data was never encrypted here (no key, no erasure)."""

    default_hint = "check the dossier id (the events' ce_subject, e.g. act:213105554:DEL-2026-001)"


class ErasedDossierError(ErasureError):
    """A dossier whose key was destroyed: its personal data stays erased, none is encrypted again under it."""

    default_hint = "the dossier was erased (see its PersonalDataErased event); publish under a new dossier id"


class WithheldPersonalDataError(ErasureError):
    """A processor met an event whose personal fields are encrypted under a dossier key it does not hold (not
    erased: withheld). Acting on the placeholders would publish them as data, so the record is dead-lettered
    with its original bytes. Context: ``dossier``, ``fields``."""

    default_hint = ("give this worker the dossier keys (the same KEYS_DIR/dossier as the producers), then "
                    "re-drive the dead letter with `bus dlq redrive`")


class SecurityError(BusError):
    default_hint = "the event cannot be trusted; do not act on it"


class AuthenticationError(SecurityError):
    """The TLS handshake or SASL login was refused. Context: bootstrap; the hint names the setting to check."""

    default_hint = "check BUS_SECURITY_PROTOCOL, BUS_SSL_CAFILE, BUS_SSL_CERTFILE and BUS_SSL_KEYFILE"


class AuthorizationError(SecurityError):
    """The broker authenticated the principal but refused the operation. Context: principal, topic, group."""

    default_hint = "ask the operator for the ACL this principal needs (bus acl plan shows them)"


class UnknownKeyError(SecurityError):
    default_hint = "publish the producer's public key with `bus keys publish` before its events"


class KeyNotValidError(SecurityError):
    default_hint = "the key was not valid at the event's time: the producer must sign with its current key"


class NoValidKeyError(SecurityError):
    """Raised when sealing: none of the signer's keys is valid at the event's time (nothing is sent).

    Context: ``siren``, ``at`` (the event time).
    """

    default_hint = "create a key valid at that time with `bus keys generate SIREN --valid-from DATE`"


class SignatureError(SecurityError):
    default_hint = "the bytes were altered after signing, or signed by another key: ask the producer to resend"


class ForeignSourceError(SignatureError):
    """The event's ``ce_source`` names an administration (``urn:siren:X:...``) other than the SIREN of the key
    that signed it: a valid signature of one tenant must never speak for another.

    Raised by ``Wire.open`` after the signature verified, and by ``Wire.seal`` before anything is signed.
    Context: ``source``, ``key_id``, ``key_siren``.
    """

    default_hint = ("an administration signs only events whose ce_source names its own SIREN: "
                    "set BUS_SOURCE to urn:siren:<the key's SIREN>:<system>, or sign with that SIREN's key")


class DecryptionError(SecurityError):
    """An addressed event verified, but its sealed payload does not decrypt with the data key (AES-GCM tag).

    Raised only after the signature is checked, so the producer itself sealed it wrong. No partial
    plaintext is ever returned. Context: ``key_id`` (the reader's decryption key), ``id`` (``ce_id``).
    """

    default_hint = "the producer sealed this event wrongly: ask it to publish it again"


class NotARecipientError(DecryptionError):
    """The event is addressed (``ce_recipients``) to administrations whose decryption keys this reader lacks.

    ``envelope``: the verified envelope (its signature checked), so a non-recipient still reads who sent
    what to whom and when. Shells skip such a record: it is not addressed to them.
    """

    default_hint = "nothing to do if the event is not for you; a recipient runs with its key (`bus keys encryption`)"

    def __init__(self, message: str, *, envelope: Any = None, hint: str | None = None, **context: Any) -> None:
        super().__init__(message, hint=hint, **context)
        self.envelope = envelope


class EncapsulationError(DecryptionError):
    default_hint = "the data key in your slot was encapsulated to another key: ask the producer to re-send to your key"


class SwappedKeyError(DecryptionError):
    default_hint = "the producer put the recipients' wrapped keys in each other's slots: ask it to publish again"


class TruncatedCiphertextError(DecryptionError):
    default_hint = "the ciphertext stops short (or a chunk is missing): fetch the whole document or event again"


class ActorTokenError(SecurityError):
    """An agent's OpenID Connect ID token was refused when publishing (the event is not sent).

    Context: ``issuer`` when known. Never the token: it is a bearer credential.
    """

    default_hint = "the agent signs in again with the identity provider (ProConnect) and the action is retried"


class ExpiredActorTokenError(ActorTokenError):
    default_hint = "the agent's session expired: sign in again with the identity provider and retry"


class UnconfiguredIssuerError(ActorTokenError):
    default_hint = "only identity providers listed in BUS_OIDC_ISSUERS assert who acted: add it there if it is trusted"


class ActorSignatureError(ActorTokenError):
    default_hint = "the ID token is not signed by its issuer's published keys (forged or altered): do not trust it"


class ActorClaimsError(ActorTokenError):
    default_hint = "the ID token must be a JWS for this bus's client id (BUS_OIDC_AUDIENCE) and name its subject"


class RegistrationRefusedError(SecurityError):
    """``bus ra approve`` refused: the SIREN is not a public body (SIRENE legal category 7xxx) or an active
    company in the reference companies. Context: ``siren``, ``key_id``."""

    default_hint = "publish the SIRENE unité légale of that SIREN on reference.companies first, or refuse the key"


class UntrustedKeyError(SecurityError):
    """The key does not chain to the trust anchor (``BUS_TRUST_ANCHOR``) at the event's time. Context: ``key_id``."""

    default_hint = "only keys approved by the registration authority sign for a SIREN: ask it to `bus ra approve` the key"


class UnapprovedKeyError(UntrustedKeyError):
    default_hint = "the key registered itself: the registration authority must approve it (`bus ra approve KEYID`)"


class RevokedKeyError(UntrustedKeyError):
    default_hint = "the authority revoked this key: events it signed from the revocation date on are not the SIREN's"


class ForgedRegistrationError(UntrustedKeyError):
    default_hint = "a registration on the directory topic does not verify; the key it names must not be used"


class ForgedApprovalError(UntrustedKeyError):
    default_hint = "an approval on the directory topic is not signed by the authority's key chain: report it to the operator"


class DeliveryError(BusError):
    default_hint = "check the broker with `bus broker status` and retry"


class BrokerUnavailableError(DeliveryError):
    """No broker answered at the bootstrap address (nothing listening, host unreachable)."""

    default_hint = "start one with `bus broker start` or set BUS_BOOTSTRAP_SERVERS"


class DuplicateEventError(DeliveryError):
    default_hint = "nothing to do: the event was already processed once"


class RecordTooLargeError(DeliveryError):
    default_hint = "send the document by claim check: put the bytes in the content store and publish the reference"


class HandlerError(DeliveryError):
    default_hint = "the handler failed on this record; fix the cause, then `bus dlq redrive`"
