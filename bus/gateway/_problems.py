"""RFC 9457 problem details: every error the gateway answers, never a stack trace.

A :class:`bus.BusError` becomes a problem whose ``type`` names its class
(``urn:dcant-bus:problem:UnknownFormatError``), ``detail`` its message, with the bus's
``error_class``, ``hint`` and context as extension members; its HTTP status follows the
class (:data:`STATUS`). Anything else is a bug: it is logged with its traceback on the server
and answered as a bare 500 problem.
"""

from __future__ import annotations

import logging
from typing import Any

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from starlette.exceptions import HTTPException

from bus._errors import (
    ActorTokenError,
    AdapterError,
    BusError,
    ContentNotFoundError,
    DeliveryError,
    DocumentTooLargeError,
    SchemaError,
    SecurityError,
    UnknownFormatError,
)

__all__ = ["PROBLEM_JSON", "GatewayProblem", "install_problem_handlers", "problem"]

log = logging.getLogger("bus.gateway")
PROBLEM_JSON = "application/problem+json"

# Most specific class first: the first isinstance match decides the status.
STATUS: tuple[tuple[type[BusError], int], ...] = (
    (DocumentTooLargeError, 413),
    (UnknownFormatError, 415),
    (AdapterError, 422),
    (SchemaError, 422),
    (ContentNotFoundError, 404),
    (ActorTokenError, 401),  # the agent's ID token (X-Agent-Id-Token) is not accepted: the agent signs in again
    (SecurityError, 403),
    (DeliveryError, 503),
)


class GatewayProblem(BusError):
    """An HTTP-level refusal (authentication, content type, idempotency) with its status."""

    default_hint = "see the problem's detail"

    def __init__(self, status: int, title: str, message: str, *, hint: str | None = None, **context: Any) -> None:
        super().__init__(message, hint=hint, **context)
        self.status = status
        self.title = title


def problem(status: int, title: str, detail: str, *, kind: str | None = None,
            headers: dict[str, str] | None = None, **extra: Any) -> JSONResponse:
    """A problem+json response."""
    body = {"type": f"urn:dcant-bus:problem:{kind}" if kind else "about:blank", "title": title,
            "status": status, "detail": detail, **{k: v for k, v in extra.items() if v is not None}}
    return JSONResponse(body, status_code=status, media_type=PROBLEM_JSON, headers=headers)


def status_of(err: BusError) -> int:
    if isinstance(err, GatewayProblem):
        return err.status
    return next((code for cls, code in STATUS if isinstance(err, cls)), 400 if err.context else 500)


def from_bus_error(err: BusError) -> JSONResponse:
    status = status_of(err)
    kind = type(err).__name__
    title = err.title if isinstance(err, GatewayProblem) else kind
    context = {k: str(v) for k, v in err.context.items()}
    headers = {"WWW-Authenticate": 'Bearer realm="bus"'} if status == 401 else None
    return problem(status, title, err.message, kind=kind, error_class=kind, hint=err.hint,
                   context=context or None, headers=headers)


def install_problem_handlers(app: FastAPI) -> None:
    """Answer every error of ``app`` as problem+json."""

    @app.exception_handler(BusError)
    async def _bus(request: Request, err: BusError) -> JSONResponse:
        return from_bus_error(err)

    @app.exception_handler(HTTPException)
    async def _http(request: Request, err: HTTPException) -> JSONResponse:
        return problem(err.status_code, str(err.detail), str(err.detail), headers=getattr(err, "headers", None))

    @app.exception_handler(RequestValidationError)
    async def _invalid(request: Request, err: RequestValidationError) -> JSONResponse:
        first = err.errors()[0] if err.errors() else {}
        where = ".".join(str(p) for p in first.get("loc", ()))
        return problem(422, "invalid request", f"{where}: {first.get('msg', 'invalid')}", kind="InvalidRequest",
                       hint="compare the request with /openapi.json")

    @app.exception_handler(Exception)
    async def _bug(request: Request, err: Exception) -> JSONResponse:
        log.exception("unexpected error on %s %s", request.method, request.url.path)
        return problem(500, "internal error", "the gateway failed on this request; it is logged on the server",
                       kind="InternalError", hint="retry later; report it if it persists")
