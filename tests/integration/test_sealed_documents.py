"""An addressed document through the ingress on the real broker (issue 12): stored sealed, read by its recipient.

The submitter addresses the document to the worker's administration: the content store holds its
ciphertext only (the plaintext is not in the stored file), the ``bus worker --processor ingress``
process decrypts it as a recipient and emits its pivot, and the recipient reads the document back
through :func:`bus._content.read_document`; a non-recipient gets ``NotARecipientError``, and a
submission whose document is sealed to another administration is dead-lettered with that class.
"""

from __future__ import annotations

import datetime as dt
import shutil
import uuid

import pytest

from bus import BusContext, DecryptionKeyring, Wire, generate_encryption_key
from bus._content import open_content_store, put_document, read_document
from bus._directory import encryption_key_event
from bus._errors import NotARecipientError
from bus._runtime import encryption_key_store
from bus.client import Publisher, read_topic
from bus._sealed import DocumentKey
from processors.ingress import submit, submitted_event

from tests.integration.test_worker import (  # noqa: F401 (keyed and workers are fixtures)
    SUBMITTER_SIREN, WORKER_SIREN, eventually, keyed, workers,
)

pytestmark = pytest.mark.asyncio(loop_scope="session")

INVOICE = "invoices/en16931-ubl/ubl-tc434-example1.xml"


async def test_an_addressed_document_is_stored_sealed_and_read_back_by_its_recipient(keyed, workers, corpus,
                                                                                    tmp_path):
    root = tmp_path / "state"
    shutil.copytree(keyed.resolved_keys_dir, root / "keys")
    settings = keyed.model_copy(update={"consumer_group": f"ingress-{uuid.uuid4().hex[:6]}", "state_dir": root,
                                        "keys_dir": root / "keys"})
    mine = generate_encryption_key(WORKER_SIREN, valid_from=dt.datetime.now(dt.UTC) - dt.timedelta(hours=1))
    stranger = generate_encryption_key("220200010")
    encryption_key_store(settings).save(mine)  # the worker serves WORKER_SIREN: it holds its decryption key
    worker_ctx = await BusContext.connect(settings, create_topics=False)
    async with Publisher(settings, worker_ctx.wire()) as publisher:
        await publisher.publish(encryption_key_event(mine.public), topic="reference.administrations")

    group = workers(settings)
    group.start("ingress", "ingress")
    submitter = settings.model_copy(update={"source": f"urn:siren:{SUBMITTER_SIREN}:test"})
    ctx = await BusContext.connect(submitter, create_topics=False)
    wire = ctx.wire()
    wire.encryption_keys = {WORKER_SIREN: mine.public}
    async with Publisher(submitter, wire) as publisher:
        record = await submit(ctx, publisher, corpus / INVOICE, recipients=(WORKER_SIREN,))
    cause = dict(record.headers)["ce_id"].decode()
    assert dict(record.headers)["ce_recipients"] == WORKER_SIREN.encode()

    reader = Wire(ctx.catalog, ctx.directory, None, decryption=DecryptionKeyring([mine]))
    submitted = reader.open(record)
    sha256 = submitted.data["document"]["sha256"]
    store = open_content_store(settings)
    plain = (corpus / INVOICE).read_bytes()
    stored = store.path(sha256).read_bytes()
    assert plain[200:264] not in stored and b"12115118" not in stored

    async def pivots() -> list:
        return [e for e in (reader.open(r) for r in await read_topic(settings, ctx.topic("invoices")))
                if e.envelope.causationid == cause]

    (pivot,) = await eventually(pivots, "the invoice pivot of the sealed document",
                                detail=lambda: group.log("ingress")[-3000:])
    assert pivot.subject == "invoice:57151520:12115118"
    assert pivot.envelope.recipient_sirens == (WORKER_SIREN,)  # what it derives stays addressed
    with read_document(store, sha256, DecryptionKeyring([mine])) as (handle, key):
        assert handle.read() == plain and key is not None
    with pytest.raises(NotARecipientError), read_document(store, sha256, DecryptionKeyring([stranger])):
        pass

    # A submission addressed to the worker whose document was sealed to someone else: a producer's
    # error, dead-lettered with its class, never adapted.
    foreign = put_document(store, corpus / INVOICE, key=DocumentKey.fresh([stranger.public]),
                           media_type="application/xml", file_name="foreign.xml")
    async with Publisher(submitter, wire) as publisher:
        wrong = await publisher.publish(submitted_event(foreign.to_record(), submitter_siren=SUBMITTER_SIREN,
                                                        recipients=(WORKER_SIREN,)), topic="ingress.raw")

    async def dead_letter() -> list:
        return [r for r in await read_topic(settings, ctx.topic("deadletter"))
                if dict(r.headers).get("ce_id") == dict(wrong.headers)["ce_id"]]

    (dead,) = await eventually(dead_letter, "the submission of a document sealed to another administration",
                               detail=lambda: group.log("ingress")[-3000:])
    assert dict(dead.headers)["dlq_error_class"] == b"NotARecipientError"
    group.assert_alive()
