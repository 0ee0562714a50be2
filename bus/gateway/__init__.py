"""``bus gateway``: the HTTP access point for systems that do not speak Kafka (issue 13).

An administration (or a mutualisation structure for its members) runs it next to its
software: it holds their signing keys, stores uploads in the content store, publishes the
signed events, and serves submission statuses, inboxes (long polling and Server-Sent
Events), claim-checked documents and dossier traces, with RFC 9457 problem details.
"""

from __future__ import annotations

from ._app import Gateway, Intake, create_app
from ._auth import Caller, TokenVerifier
from ._config import ClientPolicy, GatewayConfig, GatewayTls, Issuer, Webhook
from ._problems import PROBLEM_JSON, GatewayProblem

__all__ = [
    "Caller",
    "ClientPolicy",
    "Gateway",
    "GatewayConfig",
    "GatewayProblem",
    "GatewayTls",
    "Intake",
    "Issuer",
    "PROBLEM_JSON",
    "TokenVerifier",
    "Webhook",
    "create_app",
]
