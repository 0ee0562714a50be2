"""``bus console``: the web console of auditors and operators (Starlette, Jinja2, no JavaScript build).

Pages: a dossier's timeline across families with its state at a date, an event, its evidence
bundle; the verification status per topic and partition; the dead letters (re-drive for
operators); the barometer with SVG charts. Every page needs a login (:mod:`._auth`: OpenID Connect, or a client certificate of the bus
verified by the HTTPS server, which identifies every request of its connection); the one
action, re-drive, needs the operator role and the session's CSRF token (403 otherwise). Jinja2
autoescapes everything, so event data shows as text. A broker that cannot be reached gives a
page that says so (503); an unknown dossier or event a French 404 page; nothing shows a trace.
"""

from __future__ import annotations

import datetime as dt
import logging
from pathlib import Path
from typing import Any

from jinja2 import Environment, FileSystemLoader, select_autoescape
from starlette.applications import Starlette
from starlette.exceptions import HTTPException
from starlette.middleware import Middleware
from starlette.middleware.sessions import SessionMiddleware
from starlette.requests import Request
from starlette.responses import HTMLResponse, RedirectResponse, Response
from starlette.routing import Route

from bus._errors import BusError, DeliveryError

from ._auth import CertificateRoles, OidcClient, csrf_token, role_of
from ._charts import CHARTS, chart
from ._data import ConsoleData

__all__ = ["create_app"]

log = logging.getLogger(__name__)
_TEMPLATES = Environment(loader=FileSystemLoader(Path(__file__).parent / "templates"),
                         autoescape=select_autoescape(default=True, default_for_string=True))


def _state(events: list[Any]) -> str:
    """The state after the last event: its ``status``/``state`` field, else the type's name (as ``bus trace``)."""
    if not events:
        return "—"
    last = events[-1]
    return str(last.data.get("status") or last.data.get("state") or last.short_type)


def create_app(data: ConsoleData, oidc: OidcClient | None, *, session_secret: str, secure_cookies: bool = False,
               certificates: CertificateRoles | None = None) -> Starlette:
    """The console over ``data``, logging users in with ``oidc`` and/or the bus's ``certificates``."""

    def page(request: Request, template: str, status: int = 200, **values: Any) -> HTMLResponse:
        session = request.scope.get("session", {})
        html = _TEMPLATES.get_template(template).render(
            user=session.get("user"), role=session.get("role"), csrf=csrf_token(session) if "user" in session else "",
            path=request.url.path, **values)
        return HTMLResponse(html, status_code=status)

    def user(request: Request) -> dict[str, Any] | None:
        """The session's user; with a client certificate, its principal (refused: 403) for every request."""
        found = certificates.principal(request.scope) if certificates is not None else None
        if found is not None:
            name, role = found
            if role is None:
                raise HTTPException(403, f"Le certificat « {name} » n'ouvre pas la console")
            if request.session.get("user", {}).get("sub") != f"certificat:{name}":
                request.session.clear()  # another principal on this browser: a fresh session (and CSRF token)
            request.session.update(user={"name": name, "sub": f"certificat:{name}"}, role=role)
        return request.session.get("user")

    def login_first(request: Request) -> Response | None:
        if user(request) is None:
            request.session["next"] = str(request.url.path)
            return RedirectResponse("/connexion", status_code=303)
        return None

    async def home(request: Request) -> Response:
        return login_first(request) or page(request, "home.html")

    async def login(request: Request) -> Response:
        if user(request) is not None:  # a certificate already says who
            return RedirectResponse(request.session.pop("next", "/"), status_code=303)
        if oidc is None:
            return page(request, "error.html", 401, title="Connexion par certificat",
                        detail="Présentez un certificat du bus (bus pki issue) autorisé pour la console.")
        return RedirectResponse(await oidc.login_url(request.session), status_code=303)

    async def callback(request: Request) -> Response:
        if oidc is None:
            raise HTTPException(404)
        claims = await oidc.finish(request.session, request.query_params.get("code", ""),
                                   request.query_params.get("state", ""))
        request.session["user"] = {"name": claims.get("name") or claims["sub"], "sub": claims["sub"]}
        request.session["role"] = role_of(claims)
        return RedirectResponse(request.session.pop("next", "/"), status_code=303)

    async def logout(request: Request) -> Response:
        request.session.clear()
        return RedirectResponse("/connexion", status_code=303)

    async def find_dossier(request: Request) -> Response:
        dossier = request.query_params.get("id", "").strip()
        return RedirectResponse(f"/dossiers/{dossier}" if dossier else "/", status_code=303)

    async def dossier(request: Request) -> Response:
        if (redirect := login_first(request)) is not None:
            return redirect
        name = request.path_params["dossier"]
        events = await data.timeline(name)
        if not events:
            raise HTTPException(404, f"Aucun événement pour le dossier « {name} »")
        raw = request.query_params.get("date", "")
        at = None
        try:
            at = dt.date.fromisoformat(raw) if raw else None
        except ValueError:
            raise HTTPException(400, "Date invalide: écrivez-la AAAA-MM-JJ") from None
        until = [e for e in events if at is None or e.time[:10] <= at.isoformat()]
        return page(request, "dossier.html", dossier=name, events=events, at=at, state=_state(until),
                    shown=len(until))

    async def event(request: Request) -> Response:
        if (redirect := login_first(request)) is not None:
            return redirect
        name, event_id = request.path_params["dossier"], request.path_params["event"]
        found = [e for e in await data.timeline(name) if e.id == event_id]
        if not found:
            raise HTTPException(404, f"Aucun événement « {event_id} » dans le dossier « {name} »")
        return page(request, "event.html", dossier=name, event=found[0])

    async def evidence(request: Request) -> Response:
        if (redirect := login_first(request)) is not None:
            return redirect
        name = request.path_params["dossier"]
        bundle = await data.evidence(name)
        safe = "".join(c if c.isalnum() or c in "-_." else "_" for c in name)
        return Response(bundle, media_type="application/zip",
                        headers={"content-disposition": f'attachment; filename="preuves-{safe}.zip"'})

    async def verification(request: Request) -> Response:
        if (redirect := login_first(request)) is not None:
            return redirect
        now = dt.datetime.now(dt.UTC)
        rows = [(r, None if r.checkpoint_time is None else now - r.checkpoint_time) for r in await data.verification()]
        return page(request, "verification.html", rows=rows)

    async def dead_letters(request: Request) -> Response:
        if (redirect := login_first(request)) is not None:
            return redirect
        return page(request, "deadletters.html", letters=await data.dead_letters(),
                    done=request.query_params.get("renvoye"))

    async def redrive(request: Request) -> Response:
        if user(request) is None:
            raise HTTPException(403, "Connectez-vous")
        form = await request.form()
        if request.session.get("role") != "operateur":
            raise HTTPException(403, "Action réservée aux opérateurs")
        if not form.get("csrf") or form.get("csrf") != request.session.get("csrf"):
            raise HTTPException(403, "Jeton anti-falsification (CSRF) absent ou invalide")
        where = await data.redrive(request.path_params["partition"], request.path_params["offset"])
        return RedirectResponse(f"/lettres-mortes?renvoye={where}", status_code=303)

    async def barometer(request: Request) -> Response:
        if (redirect := login_first(request)) is not None:
            return redirect
        from bus._opendata import FLOW_FIELDS, FLOW_LABELS, LABELS

        cells = await data.barometer()
        charts = [chart(cells, *spec) for spec in CHARTS if any(c["flow"] == spec[0] for c in cells)]
        return page(request, "barometer.html", cells=cells, charts=charts, labels=LABELS, flow_fields=FLOW_FIELDS,
                    flow_labels=FLOW_LABELS)

    async def http_error(request: Request, exc: Exception) -> Response:
        assert isinstance(exc, HTTPException)
        titles = {403: "Accès refusé", 404: "Page introuvable", 400: "Requête invalide", 405: "Méthode non permise"}
        detail = exc.detail if exc.status_code != 404 or "Aucun" in str(exc.detail) else "Cette page n'existe pas."
        return page(request, "error.html", exc.status_code, title=titles.get(exc.status_code, "Erreur"), detail=detail)

    async def unreachable(request: Request, exc: Exception) -> Response:
        log.warning("console: %s", exc)
        return page(request, "error.html", 503, title="Le bus est injoignable",
                    detail="Le courtier Kafka ne répond pas. Réessayez quand il est redémarré (bus broker start).")

    async def bus_error(request: Request, exc: Exception) -> Response:
        log.warning("console: %s", exc)
        return page(request, "error.html", 502, title="Opération impossible", detail=str(getattr(exc, "message", exc)))

    async def crash(request: Request, exc: Exception) -> Response:
        log.exception("console: unexpected error")
        return page(request, "error.html", 500, title="Erreur interne",
                    detail="Une erreur inattendue est survenue; elle est consignée dans le journal du serveur.")

    routes = [
        Route("/", home), Route("/connexion", login), Route("/connexion/retour", callback),
        Route("/deconnexion", logout, methods=["POST"]), Route("/dossiers", find_dossier),
        Route("/dossiers/{dossier:path}/evenements/{event}", event),
        Route("/dossiers/{dossier:path}/preuves.zip", evidence), Route("/dossiers/{dossier:path}", dossier),
        Route("/verification", verification), Route("/lettres-mortes", dead_letters),
        Route("/lettres-mortes/{partition:int}/{offset:int}/renvoyer", redrive, methods=["POST"]),
        Route("/barometre", barometer),
    ]
    return Starlette(
        routes=routes,
        middleware=[Middleware(SessionMiddleware, secret_key=session_secret, same_site="lax",
                               https_only=secure_cookies, session_cookie="bus_console")],
        exception_handlers={HTTPException: http_error, DeliveryError: unreachable, BusError: bus_error,
                            OSError: unreachable, Exception: crash},
    )
