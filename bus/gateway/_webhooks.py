"""Webhooks: an administration's inbox pushed to a receiver, signed the Standard Webhooks way.

Each delivery is a POST of the inbox item's JSON with ``webhook-id`` (the event's ``ce_id``,
the same on every attempt, so the receiver deduplicates), ``webhook-timestamp`` (Unix seconds)
and ``webhook-signature`` (``v1,`` + base64 HMAC-SHA256 of ``id.timestamp.body`` under the
webhook's secret). Any 2xx is success; another status, a timeout or a refused connection is
retried after ``backoff * 2**attempt`` seconds, at least once delivered or, after
``max_attempts``, dead-lettered to ``STATE_DIR/gateway/webhooks-deadletter.jsonl`` with the
last error (listed by ``GET /v1/webhooks/deadletter``, redelivered on request by ``POST
/v1/webhooks/deadletter/{webhook_id}/redeliver``). One queue per webhook keeps the inbox order.
"""

from __future__ import annotations

import asyncio
import base64
import hashlib
import hmac
import json
import logging
import time
from pathlib import Path
from typing import Any

import httpx

from ._config import Webhook, _match
from ._feed import FeedItem

__all__ = ["redeliver", "secret_bytes", "sign", "start_webhooks"]

log = logging.getLogger("bus.gateway.webhooks")


def secret_bytes(secret: str) -> bytes:
    """The HMAC key of a ``whsec_<base64>`` secret (or a bare base64 one)."""
    return base64.b64decode(secret.removeprefix("whsec_"))


def sign(secret: str, msg_id: str, timestamp: int, body: bytes) -> str:
    """The ``webhook-signature`` header value of one delivery."""
    mac = hmac.new(secret_bytes(secret), f"{msg_id}.{timestamp}.".encode() + body, hashlib.sha256).digest()
    return "v1," + base64.b64encode(mac).decode()


class Dispatcher:
    """Delivers one webhook's items in order, with retries, to its receiver."""

    def __init__(self, hook: Webhook, deadletter: Path) -> None:
        self.hook = hook
        self.deadletter = deadletter
        self.queue: asyncio.Queue[FeedItem] = asyncio.Queue()
        self.delivered = 0

    async def run(self, stop: asyncio.Event) -> None:
        async with httpx.AsyncClient(timeout=self.hook.timeout_seconds) as client:
            while not stop.is_set():
                try:
                    item = await asyncio.wait_for(self.queue.get(), 0.5)
                except TimeoutError:
                    continue
                await self.deliver(client, item, stop)

    async def deliver(self, client: httpx.AsyncClient, item: FeedItem, stop: asyncio.Event) -> None:
        body = json.dumps(item.to_json()).encode()
        error = ""
        for attempt in range(self.hook.max_attempts):
            stamp = int(time.time())
            headers = {"content-type": "application/json", "webhook-id": item.id,
                       "webhook-timestamp": str(stamp), "webhook-signature": sign(self.hook.secret, item.id, stamp, body)}
            try:
                answer = await client.post(self.hook.url, content=body, headers=headers)
                if 200 <= answer.status_code < 300:
                    self.delivered += 1
                    return
                error = f"HTTP {answer.status_code}"
            except httpx.HTTPError as exc:
                error = f"{type(exc).__name__}"
            log.warning("webhook %s: attempt %d of %s failed: %s", self.hook.url, attempt + 1, item.id, error)
            if attempt + 1 < self.hook.max_attempts:
                try:  # the backoff, cut short when the gateway stops
                    await asyncio.wait_for(stop.wait(), self.hook.backoff_seconds * 2 ** attempt)
                    return
                except TimeoutError:
                    pass
        self.deadletter.parent.mkdir(parents=True, exist_ok=True)
        with self.deadletter.open("a", encoding="utf-8") as out:
            out.write(json.dumps({"webhook": self.hook.url, "administration": self.hook.administration,
                                  "webhook_id": item.id, "attempts": self.hook.max_attempts, "last_error": error,
                                  "event": item.to_json()}) + "\n")


def read_deadletter(path: Path) -> list[dict[str, Any]]:
    if not path.is_file():
        return []
    return [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines() if line.strip()]


def redeliver(gateway: Any, path: Path, webhook_id: str, allowed: Any) -> int:
    """Queue the dead-lettered deliveries of ``webhook_id`` again (those ``allowed(entry)``); count them."""
    from dataclasses import fields

    entries = read_deadletter(path)
    again = [e for e in entries if e["webhook_id"] == webhook_id and allowed(e)]
    by_url = {d.hook.url: d for d in gateway.dispatchers}
    names = {f.name for f in fields(FeedItem)}
    for entry in again:
        event = entry["event"]
        item = FeedItem(seq=0, **{k: v for k, v in event.items() if k in names})
        by_url[entry["webhook"]].queue.put_nowait(item)
    kept = [e for e in entries if e not in again]
    path.write_text("".join(json.dumps(e) + "\n" for e in kept), encoding="utf-8")
    return len(again)


def start_webhooks(gateway: Any, stop: asyncio.Event) -> list[asyncio.Task[None]]:
    """One dispatcher task per configured webhook, fed by the gateway's feed."""
    deadletter = gateway.settings.state_dir / "gateway" / "webhooks-deadletter.jsonl"
    dispatchers = [Dispatcher(hook, deadletter) for hook in gateway.config.webhooks]
    gateway.dispatchers = dispatchers

    def offer(item: FeedItem) -> None:
        for d in dispatchers:
            if _match(d.hook.types, item.type) and gateway.feed.concerns(item, d.hook.administration):
                d.queue.put_nowait(item)

    if dispatchers:
        gateway.feed.listen(offer)
    return [asyncio.create_task(d.run(stop), name=f"webhook-{i}") for i, d in enumerate(dispatchers)]
