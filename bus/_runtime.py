"""Wiring a process to the bus: settings → catalog, key directory, signing key, wire, topics.

:class:`BusContext` is what commands, workers and tests start from. ``await
BusContext.connect(settings)`` creates the topics (idempotently), publishes the shipped schemas
the catalog topic does not hold yet, learns historic schemas and every administration's public
keys from their compacted topics, and loads this producer's signing keys from the local key
store: :meth:`BusContext.wire` signs each event with the key of the source's SIREN valid at the
event's time.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import logging
import re
from collections.abc import Callable, Collection

from ._authority import Trust, TrustAnchor
from ._catalog import Catalog, default_catalog
from ._directory import learn_record, registration_event
from ._errors import BusError, ConfigurationError, SecurityError
from ._keys import KeyDirectory, Keyring, KeyStore, SigningKey
from ._erasure import DossierKeyStore
from ._sealed import DecryptionKeyring, EncryptionKeyStore
from ._settings import BusSettings
from ._topics import ensure_topics, topic_map
from ._wire import Event, Record, Wire, utc_now

__all__ = ["BusContext", "encryption_key_store", "key_store", "siren_of_source", "trust_of"]

log = logging.getLogger("bus.runtime")
_SOURCE = re.compile(r"^urn:siren:(\d{9})(:.*)?$")
KEY_EVENT = "fr.dcant.reference.AdministrationKeyPublished"
KEY_SCHEMA = "fr.dcant.reference.AdministrationKey"


def siren_of_source(source: str) -> str:
    """``213105554`` for ``urn:siren:213105554:webdelib``."""
    match = _SOURCE.match(source)
    if not match:
        raise ConfigurationError(f"source {source!r} is not urn:siren:<9 digits>:<system>",
                                 hint="set BUS_SOURCE, e.g. urn:siren:213105554:webdelib")
    return match.group(1)


def trust_of(settings: BusSettings) -> Trust:
    """The trust rules of these settings: enforced with BUS_TRUST_ANCHOR; else a warning at the first check."""
    if settings.trust_anchor:
        return Trust(TrustAnchor.parse(settings.trust_anchor))
    return Trust()


def key_store(settings: BusSettings) -> KeyStore:
    """The private-key store of these settings (encrypted at rest with BUS_KEY_PASSPHRASE when set)."""
    passphrase = settings.key_passphrase.get_secret_value().encode() if settings.key_passphrase else None
    return KeyStore(settings.resolved_keys_dir, passphrase)


def encryption_key_store(settings: BusSettings) -> EncryptionKeyStore:
    """The store of this process's decryption keys: ``<keys dir>/encryption`` (same passphrase)."""
    passphrase = settings.key_passphrase.get_secret_value().encode() if settings.key_passphrase else None
    return EncryptionKeyStore(settings.resolved_keys_dir / "encryption", passphrase)


def dossier_key_store(settings: BusSettings) -> DossierKeyStore:
    """The per-dossier keys of personal fields (crypto-shredding): ``<keys dir>/dossier``.

    With the other private keys, so the processes that share a keys directory (``BUS_KEYS_DIR``)
    but each keep their own state read the same dossiers.
    """
    return DossierKeyStore(settings.resolved_keys_dir / "dossier")


@dataclasses.dataclass
class BusContext:
    """Everything a process needs to seal and open events on one cluster.

    ``signer`` is the source's key valid now (None when there is none); ``keyring`` every
    stored key of the source's SIREN, so an event dated in another key's period gets that key.
    """

    settings: BusSettings
    catalog: Catalog
    directory: KeyDirectory
    keystore: KeyStore
    signer: SigningKey | None
    clock: Callable[[], dt.datetime] = utc_now
    rejected_keys: int = 0
    keyring: Keyring | None = None
    #: The decryption keys of the administrations this process reads for (None: it is no recipient).
    decryption: DecryptionKeyring | None = None

    @classmethod
    def offline(cls, settings: BusSettings, *, clock: Callable[[], dt.datetime] = utc_now) -> BusContext:
        """A context from local files only (no broker): shipped catalog, local keys."""
        store = key_store(settings)
        directory = KeyDirectory((k.public for k in store.load_all()), trust=trust_of(settings))
        signer = keyring = None
        try:
            siren = siren_of_source(settings.source)
            keyring = store.keyring(siren)
            signer = store.current(siren, clock())
        except ConfigurationError:
            signer = None
        held = encryption_key_store(settings).keyring()
        return cls(settings, default_catalog(), directory, store, signer, clock, keyring=keyring,
                   decryption=held if len(held) else None)

    @classmethod
    async def connect(cls, settings: BusSettings, *, clock: Callable[[], dt.datetime] = utc_now,
                      create_topics: bool = True) -> BusContext:
        """A context on the cluster: topics ensured, catalog and key directory loaded from it."""
        from .client import admin_client

        ctx = cls.offline(settings, clock=clock)
        if create_topics:
            admin = admin_client(settings)
            await admin.start()
            try:
                await ensure_topics(admin, topic_map(settings).values())
            finally:
                await admin.close()
        held = await ctx._learn_catalog()
        await ctx._learn_keys()
        await ctx.publish_schemas(held=held)
        return ctx

    def signing_keys(self) -> Keyring | None:
        """The keys :meth:`wire` signs with: the stored ones of the source's SIREN and ``signer``."""
        keys = [*(self.keyring.keys if self.keyring is not None else ()),
                *((self.signer,) if self.signer is not None else ())]
        return Keyring(keys) if keys else None

    def wire(self) -> Wire:
        return Wire(self.catalog, self.directory, self.signing_keys(), source=self.settings.source,
                    clock=self.clock, max_event_bytes=self.settings.max_event_bytes, decryption=self.decryption,
                    recipient_policy=self.settings.recipient_policy, dossier_keys=dossier_key_store(self.settings))

    def topic(self, key: str) -> str:
        return topic_map(self.settings)[key].name

    async def refresh(self) -> None:
        """Re-read the catalog and administrations topics (historic schemas, published keys)."""
        await self._learn_catalog()
        await self._learn_keys()

    async def _learn_catalog(self) -> set[bytes]:
        """Add the catalog topic's schemas to the catalog; the keys of the valid records it holds."""
        from .client import read_topic

        held: set[bytes] = set()
        for record in await read_topic(self.settings, self.topic("catalog")):
            held.discard(record.key or b"")  # a later record of a key replaces it (compacted topic)
            if record.value is not None:
                try:
                    schema = self.catalog.add_catalog_record(record.value)
                except BusError as err:
                    log.warning("ignoring catalog record at offset %s: %s", record.offset, err.message)
                    continue
                if record.key == schema.fingerprint.hex().encode():
                    held.add(record.key)
        return held

    async def _learn_keys(self) -> None:
        from .client import read_topic

        # Directory records are events themselves, folded in topic order (bus._directory).
        bootstrap = Wire(self.catalog, self.directory, None)
        for record in await read_topic(self.settings, self.topic("reference.administrations")):
            self.learn_key(bootstrap, record)

    def learn_key(self, wire: Wire, record: Record) -> None:
        """Fold a directory record (registration, approval, revocation, authority key); count a refused one."""
        try:
            learn_record(self.directory, self.catalog, record, wire)
        except (BusError, SecurityError, KeyError, TypeError) as err:
            self.rejected_keys += 1
            log.warning("rejected directory record at offset %s: %s", record.offset, err)

    async def publish_schemas(self, *, held: Collection[bytes] | None = None) -> int:
        """Put on the compacted catalog topic (key = fingerprint) every catalogued schema it lacks.

        ``held``: the keys the topic holds already (read from it when None). Publishing only the
        missing versions keeps the topic, which every connect reads in full, from growing with
        each connect: compaction never cleans the active segment. Returns how many were sent.
        """
        from .client import Publisher

        if held is None:
            held = await self._learn_catalog()
        missing = [s for s in self.catalog if s.fingerprint.hex().encode() not in held]
        if not missing:
            return 0
        async with Publisher(self.settings, self.wire()) as publisher:
            for schema in missing:
                await publisher.send_raw(self.topic("catalog"),
                                         Record(schema.fingerprint.hex().encode(), schema.to_catalog_record(), ()))
        return len(missing)

    def key_event(self, key: SigningKey) -> Event:
        return registration_event(key)

    async def publish_directory(self, events: list[Event], signer: SigningKey) -> list[Record]:
        """Publish directory events (approvals, revocations, authority keys) signed by ``signer``; fold them in."""
        from .client import Publisher

        wire = Wire(self.catalog, self.directory, signer, clock=self.clock,
                    max_event_bytes=self.settings.max_event_bytes)
        records = []
        async with Publisher(self.settings, wire) as publisher:
            for event in events:
                records.append(await publisher.publish(event, topic="reference.administrations"))
        for record in records:
            self.learn_key(wire, record)
        return records

    async def publish_keys(self, keys: list[SigningKey]) -> None:
        """Publish public keys on the administrations topic, each record signed by its own key."""
        from .client import Publisher

        for key in keys:
            self.directory.add(key.public)
            wire = Wire(self.catalog, self.directory, key, clock=self.clock,
                        max_event_bytes=self.settings.max_event_bytes)
            async with Publisher(self.settings, wire) as publisher:
                await publisher.publish(self.key_event(key), topic="reference.administrations")
