"""``bus pki init|issue|issue-broker|scram``: the site's certificate authority for the secure broker.

The authority lives in ``STATE_DIR/pki`` (``ca.key`` encrypted with ``BUS_KEY_PASSPHRASE`` when
set). ``issue`` writes a client certificate whose subject maps to ``User:<SIREN>`` or
``User:<service>``; give the three files it prints to that tenant as ``BUS_SSL_CAFILE``,
``BUS_SSL_CERTFILE`` and ``BUS_SSL_KEYFILE``.
"""

from __future__ import annotations

from pathlib import Path

import typer

from bus._pki import CertificateAuthority, write_keystore
from bus._settings import BusSettings

from ._common import console, settings

__all__ = ["register"]

pki_app = typer.Typer(name="pki", help="The site's certificate authority: broker and tenant certificates.",
                      no_args_is_help=True)


def _passphrase(s: BusSettings) -> bytes | None:
    return s.key_passphrase.get_secret_value().encode() if s.key_passphrase else None


@pki_app.command("init")
def init(site: str = typer.Option("site", help="Name of the site, written in the CA's subject."),
         days: int = typer.Option(3650, min=1, help="Validity of the CA certificate."),
         exist_ok: bool = typer.Option(False, "--exist-ok", help="Keep the CA already there (print its path).")) -> None:
    """Create the CA (key 0600, encrypted with BUS_KEY_PASSPHRASE when set) and print its certificate's path."""
    s = settings()
    if exist_ok and (s.resolved_pki_dir / "ca.crt").is_file():
        typer.echo(s.resolved_pki_dir / "ca.crt")
        return
    ca = CertificateAuthority.init(s.resolved_pki_dir, passphrase=_passphrase(s), site=site, days=days)
    if s.key_passphrase is None:
        console.print("[yellow]BUS_KEY_PASSPHRASE is not set: the CA key is stored unencrypted (0600)[/]")
    typer.echo(ca.cafile)


@pki_app.command("issue")
def issue(name: str = typer.Argument(..., help="A SIREN (an administration) or a service name (operator, worker…)."),
          out: Path | None = typer.Option(None, "--out", help="Folder to write to; default STATE_DIR/pki/issued/NAME."),
          days: int = typer.Option(397, min=1, help="Validity in days.")) -> None:
    """Issue a client certificate for NAME; its principal is User:NAME. Prints the BUS_SSL_* to set."""
    s = settings()
    ca = CertificateAuthority(s.resolved_pki_dir, passphrase=_passphrase(s))
    password = s.ssl_key_password or s.key_passphrase
    issued = ca.issue(name, out or s.resolved_pki_dir / "issued" / name, days=days,
                      passphrase=password.get_secret_value().encode() if password else None)
    typer.echo(f"BUS_SECURITY_PROTOCOL=SSL\nBUS_SSL_CAFILE={issued.cafile}\n"
               f"BUS_SSL_CERTFILE={issued.certfile}\nBUS_SSL_KEYFILE={issued.keyfile}")
    console.print(f"{issued.principal}, valid until {issued.not_after:%Y-%m-%d}"
                  + ("" if password else " (key unencrypted: set BUS_SSL_KEY_PASSWORD or BUS_KEY_PASSPHRASE)"))


@pki_app.command("issue-broker")
def issue_broker(days: int = typer.Option(397, min=1, help="Validity in days."),
                 host: list[str] = typer.Option(["localhost", "127.0.0.1"], "--host",
                                                help="A host name or address of a node (repeat for each).")) -> None:
    """(Re-)issue the brokers' certificate (STATE_DIR/pki/broker); `bus broker start --secure` uses it."""
    s = settings()
    ca = CertificateAuthority(s.resolved_pki_dir, passphrase=_passphrase(s))
    folder = s.resolved_pki_dir / "broker"
    issued = ca.issue_broker(folder, days=days, passphrase=_passphrase(s), hosts=tuple(host))
    write_keystore(issued.certfile, issued.keyfile, _passphrase(s))
    typer.echo(issued.certfile)


@pki_app.command("issue-server")
def issue_server(name: str = typer.Argument("console", help="The server's service name."),
                 out: Path | None = typer.Option(None, "--out", help="Folder to write to; default STATE_DIR/pki/issued/NAME."),
                 days: int = typer.Option(397, min=1, help="Validity in days."),
                 host: list[str] = typer.Option(["localhost", "127.0.0.1"], "--host",
                                                help="A host name or address it is reached at (repeat for each).")) -> None:
    """Issue a web server's certificate (`bus console` over HTTPS). Prints the BUS_CONSOLE_TLS_* to set."""
    s = settings()
    ca = CertificateAuthority(s.resolved_pki_dir, passphrase=_passphrase(s))
    password = s.ssl_key_password or s.key_passphrase
    issued = ca.issue_server(name, out or s.resolved_pki_dir / "issued" / name, hosts=tuple(host), days=days,
                             passphrase=password.get_secret_value().encode() if password else None)
    typer.echo(f"BUS_CONSOLE_TLS_CERTFILE={issued.certfile}\nBUS_CONSOLE_TLS_KEYFILE={issued.keyfile}\n"
               f"BUS_CONSOLE_TLS_CAFILE={issued.cafile}")


@pki_app.command("scram")
def scram(user: str = typer.Argument(..., help="The SASL user name; its principal is User:USER."),
          password: str = typer.Option(..., prompt=True, hide_input=True, confirmation_prompt=True,
                                       envvar="BUS_SCRAM_NEW_PASSWORD",
                                       help="The new password (prompted; or BUS_SCRAM_NEW_PASSWORD).")) -> None:
    """Create or change the SCRAM-SHA-512 credential of USER on the broker (run as the operator)."""
    from bus._admin import set_scram_password

    set_scram_password(settings(), user, password)
    typer.echo(f"User:{user} may log in with SCRAM-SHA-512")


def register(app: typer.Typer) -> None:
    """Add the ``pki`` command group to ``app``."""
    app.add_typer(pki_app, name="pki")
