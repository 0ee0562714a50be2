"""The exchange bus core: wire contract, keys, catalog, settings and errors.

Public API (everything else is private)::

    from bus import BusSettings, Event, Wire, Catalog, KeyDirectory, generate_key
    from bus.client import Publisher, Subscriber      # Kafka I/O
    from bus.testing import TopologyTestDriver        # processor tests without a broker

Importing :mod:`bus` has no side effect: it neither reads the environment nor connects.
"""

from ._authority import Trust, TrustAnchor
from ._broker import BrokerStatus, EmbeddedBroker, wait_until_ready
from ._catalog import Catalog, Schema, default_catalog
from ._content import ContentStore, DocumentRef, LocalContentStore, open_content_store
from ._envelope import Envelope
from ._errors import (
    AdapterError,
    AuthenticationError,
    AuthorizationError,
    BrokerError,
    BrokerUnavailableError,
    BusError,
    ConfigurationError,
    ContentNotFoundError,
    DecryptionError,
    DeliveryError,
    DocumentTooLargeError,
    DuplicateEventError,
    EncapsulationError,
    EnvelopeError,
    ForgedApprovalError,
    ForgedRegistrationError,
    HandlerError,
    IncompatibleSchemaError,
    KeyNotValidError,
    MalformedDocumentError,
    NoValidKeyError,
    NonConformantError,
    NotARecipientError,
    PayloadDecodeError,
    PayloadEncodeError,
    RecordTooLargeError,
    RegistrationRefusedError,
    RevokedKeyError,
    SchemaError,
    SecurityError,
    SignatureError,
    SwappedKeyError,
    TruncatedCiphertextError,
    UnapprovedKeyError,
    UnknownFormatError,
    UnknownKeyError,
    UnknownSchemaError,
    UnsafeDocumentError,
    UntrustedKeyError,
)
from ._keys import KeyDirectory, Keyring, KeyStore, PublicKey, SigningKey, generate_key
from ._policy import Action, ErrorPolicy
from ._processor import Context, Processor, follow_up
from ._runtime import BusContext
from ._sealed import (
    DecryptionKey,
    DecryptionKeyring,
    EncryptionKeyStore,
    RecipientKey,
    generate_encryption_key,
)
from ._settings import BusSettings
from ._step import Binding, Deliver, Emit, Entry, Fail, Prepare, Rekey, Skip, Step, Watermarks, derived_id
from ._tls import client_ssl_context
from ._topics import TopicSpec, topic_map
from ._wire import Event, Received, Record, Wire

__all__ = [
    "Action",
    "AdapterError",
    "AuthenticationError",
    "AuthorizationError",
    "Binding",
    "BrokerError",
    "BrokerStatus",
    "BrokerUnavailableError",
    "BusContext",
    "BusError",
    "BusSettings",
    "Catalog",
    "ConfigurationError",
    "ContentNotFoundError",
    "ContentStore",
    "Context",
    "DecryptionError",
    "DecryptionKey",
    "DecryptionKeyring",
    "Deliver",
    "DeliveryError",
    "DocumentRef",
    "DocumentTooLargeError",
    "DuplicateEventError",
    "EmbeddedBroker",
    "Emit",
    "EncapsulationError",
    "EncryptionKeyStore",
    "Entry",
    "Envelope",
    "EnvelopeError",
    "ErrorPolicy",
    "Event",
    "Fail",
    "ForgedApprovalError",
    "ForgedRegistrationError",
    "HandlerError",
    "IncompatibleSchemaError",
    "KeyDirectory",
    "KeyNotValidError",
    "KeyStore",
    "Keyring",
    "LocalContentStore",
    "MalformedDocumentError",
    "NoValidKeyError",
    "NonConformantError",
    "NotARecipientError",
    "PayloadDecodeError",
    "PayloadEncodeError",
    "Prepare",
    "Processor",
    "PublicKey",
    "Received",
    "RecipientKey",
    "Record",
    "RecordTooLargeError",
    "RegistrationRefusedError",
    "Rekey",
    "RevokedKeyError",
    "Schema",
    "SchemaError",
    "SecurityError",
    "SignatureError",
    "SigningKey",
    "Skip",
    "Step",
    "SwappedKeyError",
    "TopicSpec",
    "TruncatedCiphertextError",
    "Trust",
    "TrustAnchor",
    "UnapprovedKeyError",
    "UnknownFormatError",
    "UnknownKeyError",
    "UnknownSchemaError",
    "UnsafeDocumentError",
    "UntrustedKeyError",
    "Watermarks",
    "Wire",
    "client_ssl_context",
    "default_catalog",
    "derived_id",
    "follow_up",
    "generate_encryption_key",
    "generate_key",
    "open_content_store",
    "topic_map",
    "wait_until_ready",
]
