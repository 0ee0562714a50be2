"""``bus console``: serve the web console (auditors and operators) with uvicorn."""

from __future__ import annotations

import os

import typer

from bus._errors import ConfigurationError

from ._common import console, settings

__all__ = ["register"]


def register(app: typer.Typer) -> None:
    @app.command("console")
    def serve(host: str = typer.Option("127.0.0.1", "--host", help="interface to listen on"),
              port: int = typer.Option(8080, "--port", help="port to listen on")) -> None:
        """La console web: dossiers, vérification, lettres mortes, baromètre (OpenID Connect ou certificats: BUS_CONSOLE_*)."""
        try:
            import uvicorn
            from pydantic import ValidationError

            from bus.console import ConsoleSettings, build_app
            from bus._https import loaded
            from bus.console._serve import server_config
        except ImportError as error:
            raise ConfigurationError(f"the console needs its extra: {error.name} is missing",
                                     hint="pip install 'dcant-bus[console]'") from error
        try:
            config = ConsoleSettings()  # type: ignore[call-arg]
        except ValidationError as error:
            missing = ", ".join(f"BUS_CONSOLE_{'_'.join(map(str, e['loc'])).upper()}" for e in error.errors())
            raise ConfigurationError(f"the console is not configured: {missing}",
                                     hint="set a random session secret, and the OpenID Connect issuer or the "
                                          "TLS files (BUS_CONSOLE_TLS_CERTFILE, _KEYFILE, _CAFILE)") from error
        config.check("BUS_CONSOLE_")
        if config.oidc_issuer is None and not config.certificates:
            raise ConfigurationError("the console has no way to log in",
                                     hint="set BUS_CONSOLE_OIDC_ISSUER, or BUS_CONSOLE_TLS_CERTFILE, "
                                          "BUS_CONSOLE_TLS_KEYFILE and BUS_CONSOLE_TLS_CAFILE (bus pki issue-server)")
        scheme = "https" if config.certificates else "http"
        if "BUS_CONSOLE_PUBLIC_URL" not in os.environ:
            config = config.model_copy(update={"public_url": f"{scheme}://{host}:{port}"})
        served = loaded(server_config(build_app(settings(), config), config, host, port), "BUS_CONSOLE_")
        console.print(f"console on {scheme}://{host}:{port}"
                      + (" (client certificates of the site CA)" if config.certificates else ""))
        uvicorn.Server(served).run()
