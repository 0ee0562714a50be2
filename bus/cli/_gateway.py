"""``bus gateway``: serve the HTTP access point (composition root: adapters and ingress wired in)."""

from __future__ import annotations

import ipaddress
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import typer

from bus._errors import ConfigurationError
from bus._settings import BusSettings
from bus._wire import Event

from bus._topics import topic_map

from ._common import run, settings

__all__ = ["BusIntake", "gateway_app", "register"]


class BusIntake:
    """The gateway's :class:`bus.gateway.Intake` on this repository's adapters and ingress core."""

    def __init__(self, max_bytes: int) -> None:
        self.max_bytes = max_bytes

    def check(self, path: Path, *, declared_format: str | None, name: str) -> tuple[str, list[str]]:
        from processors.ingress import BUNDLE_FORMAT, adapt, is_tar

        with path.open("rb") as handle:
            head = handle.read(512)
            if is_tar(head) and declared_format in (None, BUNDLE_FORMAT):
                return BUNDLE_FORMAT, []  # a bundle is read by the ingress worker, annexes unparsed
            handle.seek(0)
            data = handle.read(self.max_bytes + 1)
        adaptation = adapt(data, sha256="", declared_format=declared_format, name=name)
        if adaptation.error is not None:
            raise adaptation.error
        return adaptation.format or "", [p.subject for p in adaptation.pivots]

    def submitted_event(self, ref: Mapping[str, Any], *, submitter_siren: str, declared_format: str | None,
                        dossier_hint: str | None) -> Event:
        from processors.ingress import submitted_event

        return submitted_event(ref, submitter_siren=submitter_siren, declared_format=declared_format,
                               dossier_hint=dossier_hint)

    def pivot_event(self, doc: Mapping[str, Any]) -> Event:
        from bus._catalog import default_catalog, from_json_value
        from bus._errors import MalformedDocumentError, UnknownSchemaError

        try:
            name = doc["schema"]
            try:
                schema = default_catalog().latest(name)
            except KeyError as exc:
                raise UnknownSchemaError(f"unknown pivot schema {name!r}",
                                         hint="run `bus schemas list` for the pivot schemas") from exc
            data = from_json_value(schema.parsed, doc["data"])
            return Event(type=doc["type"], subject=doc["subject"], schema=name, data=data)
        except (KeyError, TypeError, ValueError, AttributeError) as exc:
            raise MalformedDocumentError(f"not a pivot event ({type(exc).__name__}: {exc})",
                                         hint="send {type, schema, subject, data} as `bus adapt` prints it") from exc

    def to_json(self, value: Any) -> Any:
        from adapters import to_json_value

        return to_json_value(value)


def gateway_app(s: BusSettings, config: Any, *, metrics_port: int | None = None,
                metrics_host: str = "127.0.0.1") -> Any:
    """The gateway's ASGI application on these settings and configuration (metrics: see ``create_app``)."""
    from bus.gateway import create_app

    return create_app(s, config, BusIntake(config.max_upload_bytes or s.max_document_bytes),
                      metrics_port=metrics_port, metrics_host=metrics_host)


def _loopback(host: str) -> bool:
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return host == "localhost"


def register(app: typer.Typer) -> None:
    @app.command("gateway")
    def gateway(
        host: str = typer.Option("127.0.0.1", help="address to listen on"),
        port: int = typer.Option(8080, help="port to listen on"),
        config: Path = typer.Option(None, "--config", exists=True, dir_okay=False,
                                    help="gateway configuration (JSON: administrations, issuer, clients, webhooks)"),
        administration: list[str] = typer.Option(None, "--administration", "-a",
                                                 help="SIREN to act for (without --config; repeatable)"),
        metrics_port: int = typer.Option(None, "--metrics-port",
                                         help="serve /metrics, /health/live and /health/ready on this port"),
        metrics_host: str = typer.Option("127.0.0.1", "--metrics-host", help="address of the metrics server"),
    ) -> None:
        """Serve the HTTP access point: submissions, statuses, inboxes, documents, traces (OpenAPI at /openapi.json).

        HTTPS with client certificates of the site CA when BUS_GATEWAY_TLS_CERTFILE, _KEYFILE and _CAFILE are set.
        """
        import uvicorn

        from bus._https import loaded
        from bus._runtime import siren_of_source
        from bus.gateway import GatewayConfig, GatewayTls

        s = settings()
        if config is not None:
            conf = GatewayConfig.load(config)
        else:
            conf = GatewayConfig(administrations=administration or [siren_of_source(s.source)])
        tls = GatewayTls()
        tls.check("BUS_GATEWAY_")
        if conf.issuer is None and not tls.certificates and not _loopback(host):
            raise ConfigurationError(f"refusing to serve {host} without authentication",
                                     hint="configure an issuer and clients in --config, or client certificates "
                                          "(BUS_GATEWAY_TLS_CERTFILE, _KEYFILE, _CAFILE), or listen on 127.0.0.1")
        if metrics_port is not None:
            from bus._metrics import check_port

            check_port(metrics_host, metrics_port)
        app = gateway_app(s, conf, metrics_port=metrics_port, metrics_host=metrics_host)
        served = loaded(tls.server_config(app, host, port, require_certificate=conf.issuer is None, access_log=False),
                        "BUS_GATEWAY_")
        from bus.client import partitions_of

        run(partitions_of(s, [topic_map(s)["deadletter"].name]))  # a DeliveryError, one line, when Kafka is down
        uvicorn.Server(served).run()
