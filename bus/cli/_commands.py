"""The command groups of ``bus``, each a ``register(app)`` function in its own module."""

from __future__ import annotations

from . import (_acl, _audit, _barometer, _bench, _broker, _cluster, _config, _console, _demo, _dlq, _documents, _erase,
               _events, _gateway, _keys, _pki, _profiles, _ra, _schemas, _topics, _worker)

REGISTRARS = [
    _broker.register,
    _cluster.register,
    _documents.register,
    _events.register,
    _keys.register,
    _ra.register,
    _topics.register,
    _schemas.register,
    _dlq.register,
    _demo.register,
    _audit.register,
    _erase.register,
    _barometer.register,
    _profiles.register,
    _worker.register,
    _config.register,
    _pki.register,
    _acl.register,
    _console.register,
    _bench.register,
    _gateway.register,
    _schemas.register_contract,
]
