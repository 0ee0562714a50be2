"""The HTTP API of ``bus gateway``: routes over one :class:`Gateway` (publisher, feed, stores).

The application is built by :func:`create_app` from the bus settings, a
:class:`~bus.gateway.GatewayConfig` and an :class:`Intake`: the adapters and the ingress
event are application code, handed in by the composition root (``bus/cli/_gateway.py``) so
that ``bus`` itself imports neither ``adapters`` nor ``processors``.
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import hashlib
import json
from collections.abc import AsyncIterator, Awaitable, Callable, Mapping
from pathlib import Path
from typing import Annotated, Any, Protocol

from fastapi import Depends, FastAPI, Header, Query, Request
from fastapi.responses import JSONResponse, StreamingResponse

from bus._actor import Actor
from bus._content import CHUNK_BYTES, ContentStore, open_content_store, put_document, read_document
from bus._keys import Keyring
from bus._metrics import BusMetrics, GatewayMetrics, serve
from bus._runtime import BusContext
from bus._sealed import DecryptionKeyring, DocumentKey
from bus._settings import BusSettings
from bus._topics import FAMILIES
from bus._wire import Event, Wire, uuid7
from bus.client import Publisher

from ._auth import Caller, TokenVerifier, certificate_caller
from ._config import GatewayConfig
from ._cursor import Cursor
from ._feed import Feed, FeedItem
from ._idempotency import IdempotencyStore, ce_id_for
from ._observe import MeasuredApp, counted_submission, gateway_readiness, observe_feed
from ._problems import GatewayProblem, install_problem_handlers
from ._uploads import Upload, spool_multipart, spool_raw

__all__ = ["Gateway", "Intake", "create_app"]

API = "/v1"


class Intake(Protocol):
    """What the gateway asks of the application: check a document, build the ingress events."""

    def check(self, path: Path, *, declared_format: str | None, name: str) -> tuple[str, list[str]]:
        """The document's format and its pivots' subjects; raises its AdapterError."""

    def submitted_event(self, ref: Mapping[str, Any], *, submitter_siren: str, declared_format: str | None,
                        dossier_hint: str | None) -> Event:
        """The ``DocumentSubmitted`` event of a stored document."""

    def pivot_event(self, doc: Mapping[str, Any]) -> Event:
        """A pivot event from its JSON (as ``bus adapt`` prints it); raises a BusError."""

    def to_json(self, value: Any) -> Any:
        """A decoded payload made JSON-friendly."""


@dataclasses.dataclass
class Gateway:
    """The running gateway: what every route uses."""

    settings: BusSettings
    config: GatewayConfig
    intake: Intake
    store: ContentStore
    idempotency: IdempotencyStore
    spool: Path
    wire: Wire
    publisher: Publisher
    feed: Feed
    context: BusContext
    verifier: TokenVerifier | None
    acked: dict[str, Cursor] = dataclasses.field(default_factory=dict)
    dispatchers: list[Any] = dataclasses.field(default_factory=list)
    metrics: GatewayMetrics | None = None

    @property
    def max_upload(self) -> int:
        return self.config.max_upload_bytes or self.settings.max_document_bytes

    def source_of(self, siren: str) -> str:
        return f"urn:siren:{siren}:gateway"


def _gateway(request: Request) -> Gateway:
    return request.app.state.gateway  # type: ignore[no-any-return]


async def _caller(request: Request, authorization: Annotated[str | None, Header()] = None) -> Caller:
    """The bearer token's client when the call has one (and an issuer is configured), else the certificate's."""
    gw = _gateway(request)
    if authorization is None or gw.verifier is None:
        by_certificate = certificate_caller(request.scope, gw.config.clients)
        if by_certificate is not None:
            return by_certificate
    if gw.verifier is None:
        return Caller("anonymous", None)
    return await gw.verifier.verify(authorization)


async def _agent(request: Request, x_agent_id_token: Annotated[str | None, Header()] = None,
                 x_agent_role: Annotated[str | None, Header()] = None) -> Actor | None:
    """The agent behind the call (``X-Agent-Id-Token``: its OpenID Connect ID token, verified; ``X-Agent-Role``).

    None without a token. The event submitted then carries the verified actor; the token is not kept.
    """
    if x_agent_id_token is None:
        if x_agent_role is not None:
            raise GatewayProblem(400, "role without agent", "X-Agent-Role needs the agent's X-Agent-Id-Token",
                                 hint="pass the agent's ID token, or no role")
        return None
    gw = _gateway(request)
    if not gw.settings.oidc_audience:
        raise GatewayProblem(400, "agents not accepted", "this gateway verifies no agent's ID token",
                             hint="its operator sets BUS_OIDC_ISSUERS and BUS_OIDC_AUDIENCE; or call without it")
    return await gw.publisher.actor(x_agent_id_token.strip(), role=x_agent_role)


GatewayDep = Annotated[Gateway, Depends(_gateway)]
CallerDep = Annotated[Caller, Depends(_caller)]
AgentDep = Annotated[Actor | None, Depends(_agent)]


def _submission(gw: Gateway, siren: str, ce_id: str, dossier: str | None, record_topic: str,
                fmt: str | None) -> dict[str, Any]:
    gw.feed.submitted_by[ce_id] = siren
    return {"submission_id": ce_id, "ce_id": ce_id, "administration": siren, "dossier": dossier, "format": fmt,
            "topic": record_topic, "status_url": f"{API}/submissions/{ce_id}"}


async def _publish(gw: Gateway, event: Event, topic: str | None) -> str:
    record = gw.wire.seal(event)
    name = gw.publisher.topic_name(event, topic)
    await gw.publisher.send_raw(name, record)
    return name


SUBMITTED_SCHEMA = "fr.dcant.ingress.DocumentSubmitted"  # the flow policy of a document's submission applies


def _sirens(text: str | None) -> tuple[str, ...] | None:
    """``recipients`` of a submission (comma-separated SIRENs), or None for a document in clear."""
    if text is None or not text.strip():
        return None
    sirens = tuple(s.strip() for s in text.split(",") if s.strip())
    bad = [s for s in sirens if not (len(s) == 9 and s.isdigit())]
    if bad:
        raise GatewayProblem(422, "invalid recipients", f"recipients must be SIRENs (9 digits), got {', '.join(bad)}",
                             hint="recipients=130006000,110020013")
    return sirens


def _who(caller: Caller, agent: Actor | None) -> list[str | None]:
    """Who asks, as the idempotency fingerprint counts it: the calling client and the agent behind it.

    The agent is its verified identity (issuer, subject, role), not its token: a retry after the
    token was renewed is the same agent's, a retry by another agent is another request.
    """
    return [caller.client_id, *((agent.iss, agent.sub, agent.role) if agent is not None else ())]


async def _once(gw: Gateway, siren: str, key: str | None, request: str,
                submit: Callable[[str], Awaitable[dict[str, Any]]]) -> JSONResponse:
    """Run ``submit(ce_id)`` once per idempotency key; a replay answers the stored response.

    ``request``: the fingerprinted request, who asks (:func:`_who`) included.
    """
    if key is None:
        return JSONResponse(await submit(uuid7()), 202)
    fingerprint = hashlib.sha256(request.encode()).hexdigest()
    async with gw.idempotency.lock(siren, key):
        stored = gw.idempotency.replay(siren, key, fingerprint)
        if stored is not None:
            return JSONResponse(dict(stored), 202, headers={"Idempotent-Replayed": "true"})
        body = await submit(ce_id_for(siren, key))
        gw.idempotency.remember(siren, key, fingerprint, body)
        return JSONResponse(body, 202)


async def _spool(request: Request, gw: Gateway, file_name: str | None) -> Upload:
    content_type = request.headers.get("content-type", "")
    media = content_type.split(";", 1)[0].strip().lower()
    if media == "multipart/form-data":
        return await spool_multipart(request.stream(), content_type, spool=gw.spool, limit=gw.max_upload)
    if media in ("application/json", "application/x-www-form-urlencoded", "") or media.startswith("text/html"):
        raise GatewayProblem(415, "unsupported content type", f"a document cannot be sent as {media or 'no type'}",
                             hint="send the document's own type (application/xml, application/pdf...) "
                                  "or multipart/form-data; pivot events go to /events")
    return await spool_raw(request.stream(), spool=gw.spool, limit=gw.max_upload,
                           file_name=file_name or "document", media_type=media)


def _load_acks(path: Path) -> dict[str, Cursor]:
    if not path.is_file():
        return {}
    return {siren: Cursor.decode(text) for siren, text in json.loads(path.read_text(encoding="utf-8")).items()}


def _save_acks(path: Path, acked: Mapping[str, Cursor]) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    temp = path.with_suffix(".tmp")
    temp.write_text(json.dumps({siren: c.encode() for siren, c in acked.items()}), encoding="utf-8")
    temp.replace(path)


def create_app(settings: BusSettings, config: GatewayConfig, intake: Intake, *, metrics_port: int | None = None,
               metrics_host: str = "127.0.0.1") -> Any:
    """The gateway's ASGI application; the bus side starts and stops with it (lifespan).

    ``metrics_port``: serve ``/metrics``, ``/health/live`` and ``/health/ready`` there too
    (see :mod:`bus.gateway._observe`); the application is then wrapped to count requests.
    """
    metrics = GatewayMetrics(BusMetrics()) if metrics_port is not None else None

    @contextlib.asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        ctx = await BusContext.connect(settings)
        keys = [k for siren in config.administrations for k in ctx.keystore.keyring(siren).keys]
        # only the served administrations' decryption keys: the inboxes show nothing addressed to others
        held = [k for k in (ctx.decryption.by_id.values() if ctx.decryption else ())
                if k.public.siren in config.administrations]
        wire = Wire(ctx.catalog, ctx.directory, Keyring(keys), clock=ctx.clock,
                    max_event_bytes=settings.max_event_bytes, decryption=DecryptionKeyring(held) if held else None,
                    recipient_policy=settings.recipient_policy)
        topics = [ctx.topic(f) for f in (*FAMILIES, "notifications")]
        feed = Feed(settings, wire, topics, ctx.topic("deadletter"), to_json=intake.to_json,
                    submissions=ctx.topic("ingress.raw"), metrics=metrics, administrations=config.administrations)
        state = settings.state_dir / "gateway"
        verifier = TokenVerifier(config.issuer, config.clients) if config.issuer else None
        async with Publisher(settings, wire) as publisher:
            gw = Gateway(settings, config, intake, open_content_store(settings),
                         IdempotencyStore(state / "idempotency"), state / "spool", wire, publisher, feed, ctx,
                         verifier, acked=_load_acks(state / "acked.json"), metrics=metrics)
            app.state.gateway = gw
            stop = asyncio.Event()
            tasks = [asyncio.create_task(feed.run(stop), name="gateway-feed")]
            from ._webhooks import start_webhooks

            tasks += start_webhooks(gw, stop)
            server = None
            try:
                if metrics is not None:
                    observe_feed(feed, metrics)
                    server = await serve(metrics.metrics, host=metrics_host, port=metrics_port or 0,
                                         ready=gateway_readiness(feed))
                yield
            finally:
                stop.set()
                await asyncio.gather(*tasks, return_exceptions=True)
                if server is not None:
                    await server.cleanup()

    app = FastAPI(title="dcant-bus gateway", version="1", lifespan=lifespan,
                  description="Submit documents and pivot events to the bus, follow submissions, read an "
                              "administration's inbox. Errors are RFC 9457 problem details.")
    install_problem_handlers(app)

    @app.get("/healthz", tags=["operations"])
    async def health(gw: GatewayDep) -> dict[str, Any]:
        return {"status": "ok", "feed_ready": gw.feed.ready.is_set(), "events": len(gw.feed.items)}

    @app.post(API + "/administrations/{siren}/documents", status_code=202, tags=["submissions"],
              openapi_extra={"requestBody": {"required": True, "content": {
                  "application/xml": {"schema": {"type": "string", "format": "binary"}},
                  "application/octet-stream": {"schema": {"type": "string", "format": "binary"}},
                  "multipart/form-data": {"schema": {"type": "object", "properties": {
                      "file": {"type": "string", "format": "binary"}, "format": {"type": "string"},
                      "dossier_hint": {"type": "string"}, "recipients": {"type": "string"}}}}}}})
    async def submit_document(
        siren: str, request: Request, gw: GatewayDep, caller: CallerDep, agent: AgentDep,
        idempotency_key: Annotated[str | None, Header()] = None,
        fmt: Annotated[str | None, Query(alias="format", description="native format (detected when omitted)")] = None,
        file_name: Annotated[str | None, Query(description="the document's file name (raw bodies)")] = None,
        dossier_hint: Annotated[str | None, Query()] = None,
        recipients: Annotated[str | None, Query(description="SIRENs, comma-separated: the document is stored sealed "
                                                            "to them and its submission addressed to them")] = None,
    ) -> JSONResponse:
        """Submit a native document (raw body or multipart); 202 with the submission id and status URL."""
        with counted_submission(gw.metrics, "document"):
            caller.check_administration(siren, gw.config)
            key = IdempotencyStore.check_key(idempotency_key) if idempotency_key is not None else None
            upload = await _spool(request, gw, file_name)
            try:
                fmt = upload.fields.get("format") or fmt
                dossier_hint = upload.fields.get("dossier_hint") or dossier_hint
                to = _sirens(upload.fields.get("recipients") or recipients)
                fingerprint = json.dumps(["document", upload.sha256, fmt, dossier_hint, _who(caller, agent),
                                          *([to] if to is not None else [])])
                return await _once(gw, siren, key, fingerprint,
                                   lambda ce_id: _accept(gw, caller, siren, upload, fmt, dossier_hint, ce_id,
                                                         agent, to))
            finally:
                upload.discard()

    async def _accept(gw: Gateway, caller: Caller, siren: str, upload: Upload, fmt: str | None,
                      dossier_hint: str | None, ce_id: str, agent: Actor | None,
                      recipients: tuple[str, ...] | None = None) -> dict[str, Any]:
        found, subjects = await asyncio.to_thread(gw.intake.check, upload.path, declared_format=fmt,
                                                  name=upload.file_name)
        caller.check_submit(found)
        sealing = None
        if recipients is not None:  # addressed: stored sealed to the same keys as its (addressed) submission
            recipients, keys = gw.wire.recipient_keys(recipients, SUBMITTED_SCHEMA, gw.wire.clock())
            sealing = DocumentKey.fresh(keys)
        ref = await asyncio.to_thread(put_document, gw.store, upload.path, key=sealing, media_type=upload.media_type,
                                      file_name=upload.file_name, max_bytes=gw.max_upload)
        event = gw.intake.submitted_event(ref.to_record(), submitter_siren=siren, declared_format=fmt,
                                          dossier_hint=dossier_hint)
        event = dataclasses.replace(event, id=ce_id, source=gw.source_of(siren), actor=agent, recipients=recipients)
        topic = await _publish(gw, event, "ingress.raw")
        return {**_submission(gw, siren, ce_id, subjects[0] if subjects else None, topic, found),
                "document": {"sha256": ref.sha256, "size": ref.size, "url": f"{API}/documents/{ref.sha256}"}}

    @app.post(API + "/administrations/{siren}/events", status_code=202, tags=["submissions"])
    async def submit_event(siren: str, pivot: dict[str, Any], gw: GatewayDep, caller: CallerDep, agent: AgentDep,
                           idempotency_key: Annotated[str | None, Header()] = None) -> JSONResponse:
        """Submit a pivot event as JSON (``type``, ``schema``, ``subject``, ``data``): signed and published."""
        with counted_submission(gw.metrics, "event"):
            caller.check_administration(siren, gw.config)
            key = IdempotencyStore.check_key(idempotency_key) if idempotency_key is not None else None
            event = gw.intake.pivot_event(pivot)
            caller.check_submit(event.type)

            async def publish(ce_id: str) -> dict[str, Any]:
                topic = await _publish(gw, dataclasses.replace(event, id=ce_id, source=gw.source_of(siren),
                                                               actor=agent), None)
                return _submission(gw, siren, ce_id, event.subject, topic, None)

            return await _once(gw, siren, key, json.dumps(["event", pivot, _who(caller, agent)], sort_keys=True,
                                                          default=str), publish)

    @app.get(API + "/submissions/{submission_id}", tags=["submissions"])
    async def status(submission_id: str, gw: GatewayDep, caller: CallerDep) -> dict[str, Any]:
        """``accepted`` (the pivots it became), ``refused`` (error class, message, hint) or ``pending``."""
        siren = gw.feed.submitted_by.get(submission_id)
        if siren is None:
            raise GatewayProblem(404, "unknown submission", f"no submission {submission_id} on this gateway",
                                 hint="use the submission_id the gateway answered with")
        caller.check_administration(siren, gw.config)
        dead = gw.feed.dead.get(submission_id)
        if dead is not None:
            return {"submission_id": submission_id, "status": "refused", "error_class": dead.error_class,
                    "message": dead.message, "hint": dead.hint, "processor": dead.processor}
        outputs = gw.feed.caused_by.get(submission_id, [])
        own = [gw.feed.by_id[submission_id]] if submission_id in gw.feed.by_id else []
        if outputs or own:
            return {"submission_id": submission_id, "status": "accepted",
                    "pivots": [{"ce_id": i.id, "type": i.type, "topic": i.topic, "subject": i.subject}
                               for i in (outputs or own)]}
        return {"submission_id": submission_id, "status": "pending"}

    def _page(gw: Gateway, caller: Caller, siren: str, cursor: Cursor, limit: int,
              since: int = 0) -> tuple[list[dict[str, Any]], Cursor]:
        """The inbox items past ``cursor``, each with the cursor after it, and the cursor after all."""
        out = []
        for item in gw.feed.inbox(siren, cursor, limit, caller.may_read, since=since):
            cursor = cursor.after(item.topic, item.partition, item.offset)
            out.append({"cursor": cursor.encode(), **item.to_json()})
        return out, cursor

    @app.get(API + "/administrations/{siren}/inbox", tags=["inbox"])
    async def inbox(siren: str, gw: GatewayDep, caller: CallerDep,
                    after: Annotated[str | None, Query(description="cursor (default: last acknowledged)")] = None,
                    wait: Annotated[float, Query(ge=0, description="long polling: seconds to wait for events")] = 0,
                    limit: Annotated[int, Query(ge=1, le=1000)] = 100) -> dict[str, Any]:
        """Events concerning the administration after the cursor; waits up to ``wait`` s when none."""
        caller.check_administration(siren, gw.config)
        cursor = gw.acked.get(siren, Cursor()) if after is None else Cursor.decode(after)
        loop = asyncio.get_running_loop()
        deadline = loop.time() + min(wait, gw.config.long_poll_max_seconds)
        events, cursor = _page(gw, caller, siren, cursor, limit)
        while not events and loop.time() < deadline:
            seen = len(gw.feed.items)
            await gw.feed.wait(seen, deadline - loop.time())
            events, cursor = _page(gw, caller, siren, cursor, limit, since=seen)
        return {"events": events, "next": cursor.encode()}

    @app.get(API + "/administrations/{siren}/inbox/stream", tags=["inbox"],
             response_class=StreamingResponse, responses={200: {"content": {"text/event-stream": {}}}})
    async def stream(siren: str, request: Request, gw: GatewayDep, caller: CallerDep,
                     last_event_id: Annotated[str | None, Header()] = None,
                     after: Annotated[str | None, Query()] = None) -> StreamingResponse:
        """The inbox as Server-Sent Events (``id`` is the cursor; reconnect with ``Last-Event-ID``)."""
        caller.check_administration(siren, gw.config)
        given = after if after is not None else last_event_id
        start = Cursor.decode(given) if given is not None else gw.acked.get(siren, Cursor())

        async def events() -> AsyncIterator[bytes]:
            cursor, since = start, 0
            yield b": connected\n\n"
            while not await request.is_disconnected():
                seen = len(gw.feed.items)
                page, cursor = _page(gw, caller, siren, cursor, 1000, since=since)
                for event in page:
                    yield f"id: {event['cursor']}\nevent: {event['type']}\ndata: {json.dumps(event)}\n\n".encode()
                since = seen if len(page) < 1000 else since  # a full page: more may wait before `seen`
                await gw.feed.wait(seen, 15.0)
                if len(gw.feed.items) == seen:
                    yield b": keep-alive\n\n"

        return StreamingResponse(events(), media_type="text/event-stream", headers={"Cache-Control": "no-store"})

    @app.post(API + "/administrations/{siren}/inbox/ack", tags=["inbox"])
    async def ack(siren: str, body: dict[str, str], gw: GatewayDep, caller: CallerDep) -> dict[str, str]:
        """Acknowledge every event up to ``{"cursor": "..."}``: the inbox then starts after it (kept across restarts)."""
        caller.check_administration(siren, gw.config)
        cursor = Cursor.decode(body.get("cursor") or "!")
        gw.acked[siren] = gw.acked.get(siren, Cursor()).merge(cursor)
        _save_acks(gw.settings.state_dir / "gateway" / "acked.json", gw.acked)
        return {"acknowledged": gw.acked[siren].encode()}

    @app.get(API + "/documents/{sha256}", tags=["documents"], response_class=StreamingResponse)
    async def document(sha256: str, gw: GatewayDep, caller: CallerDep) -> StreamingResponse:
        """A claim-checked document, streamed; a sealed one decrypted for a caller acting for one of its recipients."""
        stack = contextlib.ExitStack()
        # digest check and key unwrap before any byte is sent: a cut, altered or foreign document is a problem
        handle, key = await asyncio.to_thread(stack.enter_context, read_document(gw.store, sha256, gw.wire.decryption))
        headers = {"Digest": f"sha-256={sha256}"}
        if key is None:
            headers["Content-Length"] = str(gw.store.digests(sha256)["size"])
        else:
            try:
                caller.check_reader_of(key.sirens(), gw.config)
            except BaseException:
                stack.close()
                raise
            headers = {"X-Stored-Digest": f"sha-256={sha256}"}  # of the ciphertext: what the claim check pins

        def chunks() -> Any:
            with stack:
                yield from iter(lambda: handle.read(CHUNK_BYTES), b"")

        return StreamingResponse(chunks(), media_type="application/octet-stream", headers=headers)

    @app.get(API + "/webhooks/deadletter", tags=["webhooks"])
    async def webhook_deadletter(gw: GatewayDep, caller: CallerDep) -> dict[str, Any]:
        """Deliveries given up after their last attempt, for the administrations the caller acts for."""
        from ._webhooks import read_deadletter

        entries = read_deadletter(gw.settings.state_dir / "gateway" / "webhooks-deadletter.jsonl")
        mine = [e for e in entries if caller.policy is None or caller.policy.may_act_for(e["administration"])]
        return {"deliveries": mine}

    @app.post(API + "/webhooks/deadletter/{webhook_id}/redeliver", status_code=202, tags=["webhooks"])
    async def webhook_redeliver(webhook_id: str, gw: GatewayDep, caller: CallerDep) -> dict[str, Any]:
        """Queue a dead-lettered delivery again (after the receiver was fixed)."""
        from ._webhooks import redeliver

        path = gw.settings.state_dir / "gateway" / "webhooks-deadletter.jsonl"
        count = redeliver(gw, path, webhook_id,
                          lambda e: caller.policy is None or caller.policy.may_act_for(e["administration"]))
        if not count:
            raise GatewayProblem(404, "no such dead letter", f"no dead-lettered delivery {webhook_id}",
                                 hint="list them with GET /v1/webhooks/deadletter")
        return {"webhook_id": webhook_id, "requeued": count}

    @app.get(API + "/dossiers/{dossier}/trace", tags=["dossiers"])
    async def trace(dossier: str, gw: GatewayDep, caller: CallerDep) -> dict[str, Any]:
        """Every verified event of a dossier across families, by time, with its current state."""
        from bus.ledger._trace import state_at, trace_dossier

        timeline = await trace_dossier(gw.settings, gw.wire, dossier)
        state = state_at(dossier, timeline)
        return {"dossier": dossier, "state": state.state,
                "events": [{"ce_id": e.id, "type": e.type, "subject": e.subject, "time": e.time,
                            "topic": e.topic, "offset": e.offset} for e in timeline if caller.may_read(e.type or "")]}

    return app if metrics is None else MeasuredApp(app, metrics)
