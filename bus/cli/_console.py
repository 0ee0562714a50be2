"""``bus console``: serve the web console (auditors and operators) with uvicorn."""

from __future__ import annotations

import typer

from bus._errors import ConfigurationError

from ._common import console, settings

__all__ = ["register"]


def register(app: typer.Typer) -> None:
    @app.command("console")
    def serve(host: str = typer.Option("127.0.0.1", "--host", help="interface to listen on"),
              port: int = typer.Option(8080, "--port", help="port to listen on")) -> None:
        """La console web: dossiers, vérification, lettres mortes, baromètre (OpenID Connect: BUS_CONSOLE_*)."""
        try:
            import uvicorn
            from pydantic import ValidationError

            from bus.console import ConsoleSettings, build_app
        except ImportError as error:
            raise ConfigurationError(f"the console needs its extra: {error.name} is missing",
                                     hint="pip install 'dcant-bus[console]'") from error
        try:
            config = ConsoleSettings(public_url=f"http://{host}:{port}")  # type: ignore[call-arg]
        except ValidationError as error:
            missing = ", ".join(f"BUS_CONSOLE_{'_'.join(map(str, e['loc'])).upper()}" for e in error.errors())
            raise ConfigurationError(f"the console is not configured: {missing}",
                                     hint="set the OpenID Connect issuer and a random session secret") from error
        console.print(f"console on http://{host}:{port}")
        uvicorn.run(build_app(settings(), config), host=host, port=port, log_level="warning")
