"""Who acted (issue 12 item 4): an agent's ID token verified against a local issuer, its claims signed on the event.

The issuer (tests/_issuer.py) makes its keys here and serves its discovery document and JWKS on
loopback; each refusal has its error class, and an ``actor`` edited after signing fails verification.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import time
from collections.abc import Iterator

import pytest
from joserfc.jwk import ECKey

from bus import (
    Actor,
    ActorClaimsError,
    ActorSignatureError,
    ActorTokenError,
    ActorVerifier,
    EnvelopeError,
    ExpiredActorTokenError,
    SignatureError,
    UnconfiguredIssuerError,
    actor_from_id_token,
)
from bus._wire import Record

from tests._issuer import Issuer

from .conftest import company_event

AUDIENCE = "dcant-bus"


@pytest.fixture(scope="module")
def issuer() -> Iterator[Issuer]:
    provider = Issuer(client_id=AUDIENCE)
    with provider.served:
        yield provider


@pytest.fixture
def verifier(issuer: Issuer) -> ActorVerifier:
    return ActorVerifier([issuer.url], AUDIENCE)


async def test_proconnect_claims_become_the_actor_and_only_the_tokens_hash_is_kept(issuer, verifier):
    token = issuer.id_token()
    actor = await verifier.verify(token, role="maire")
    assert actor == Actor(
        iss=issuer.url, sub="4b3c1e9f-agent", token_sha256=hashlib.sha256(token.encode()).hexdigest(),
        uid="4b3c1e9f-agent", siret="21310555400017", email="jeanne.martin@mairie-test.fr",
        idp_id="71144ab3-ee1a-4401-b7b3-79b44f7daeeb", acr="eidas1", amr=("pwd", "mfa"),
        auth_time=actor.auth_time, role="maire")
    assert isinstance(actor.auth_time, int)
    header = actor.to_header()
    assert token not in header and token.split(".")[2] not in header
    assert Actor.from_header(header) == actor
    assert json.loads(header)["iss"] == issuer.url


async def test_missing_optional_claims_are_left_out(issuer, verifier):
    actor = await verifier.verify(issuer.id_token(siret=None, amr=None, email=None))
    assert actor.siret is None and actor.amr == () and actor.email is None
    assert set(json.loads(actor.to_header())) == {"iss", "sub", "token_sha256", "uid", "idp_id", "acr", "auth_time"}


async def test_the_one_off_helper_verifies_too(issuer):
    actor = await actor_from_id_token(issuer.id_token(), [issuer.url], AUDIENCE, role="adjoint")
    assert actor.role == "adjoint" and actor.iss == issuer.url


async def test_an_expired_token_is_refused(issuer, verifier):
    with pytest.raises(ExpiredActorTokenError) as caught:
        await verifier.verify(issuer.id_token(iat=int(time.time()) - 3600, lifetime=-3000))
    assert caught.value.context["issuer"] == issuer.url


async def test_a_token_not_valid_yet_is_refused(issuer, verifier):
    with pytest.raises(ExpiredActorTokenError, match="nbf"):
        await verifier.verify(issuer.id_token(nbf=int(time.time()) + 600))
    with pytest.raises(ExpiredActorTokenError, match="iat"):
        await verifier.verify(issuer.id_token(iat=int(time.time()) + 600))


async def test_a_token_of_an_issuer_not_configured_is_refused(issuer):
    other = ActorVerifier(["https://auth.agentconnect.gouv.fr/api/v2"], AUDIENCE)
    with pytest.raises(UnconfiguredIssuerError):
        await other.verify(issuer.id_token())
    with pytest.raises(UnconfiguredIssuerError):  # an issuer naming itself as the configured one is read first
        await ActorVerifier([issuer.url], AUDIENCE).verify(issuer.id_token(iss="https://idp.example.org"))


async def test_a_forged_signature_is_refused(issuer, verifier):
    forger = ECKey.generate_key("P-256", parameters={"kid": "test-key", "use": "sig", "alg": "ES256"})
    with pytest.raises(ActorSignatureError):
        await verifier.verify(issuer.id_token(key=forger))
    head, body, sig = issuer.id_token().split(".")
    edited = body[:-2] + ("AA" if body[-2:] != "AA" else "BB")
    with pytest.raises((ActorSignatureError, ActorClaimsError)):
        await verifier.verify(f"{head}.{edited}.{sig}")


async def test_a_token_for_another_audience_or_without_subject_is_refused(issuer, verifier):
    with pytest.raises(ActorClaimsError, match="aud"):
        await verifier.verify(issuer.id_token(aud="another-service"))
    with pytest.raises(ActorClaimsError):
        await verifier.verify(issuer.id_token(sub=None))
    with pytest.raises(ActorClaimsError):
        await verifier.verify("not-a-token")


async def test_an_unreachable_issuer_is_refused_without_the_token_in_the_message(issuer):
    from tests._issuer import free_port

    gone = f"http://127.0.0.1:{free_port()}"
    token = issuer.id_token(iss=gone)
    with pytest.raises(ActorTokenError) as caught:
        await ActorVerifier([gone], AUDIENCE).verify(token)
    assert type(caught.value) is ActorTokenError and token not in str(caught.value)


# -- on the wire ------------------------------------------------------------------------------------

ACTOR = Actor(iss="https://idp.test", sub="agent-1", token_sha256="ab" * 32, siret="21310555400017",
              amr=("pwd",), auth_time=1_767_225_600, role="maire")


def _with_header(record: Record, name: str, value: bytes) -> Record:
    return dataclasses.replace(record, headers=tuple((k, value if k == name else v) for k, v in record.headers))


def test_the_actor_travels_signed_and_is_read_back(wire):
    record = wire.seal(dataclasses.replace(company_event(), actor=ACTOR))
    assert dict(record.headers)["ce_actor"] == ACTOR.to_header().encode()
    received = wire.open(record)
    assert received.actor == ACTOR
    assert wire.open(wire.seal(company_event())).actor is None


def test_an_actor_edited_after_signing_fails_verification(wire):
    record = wire.seal(dataclasses.replace(company_event(), actor=ACTOR))
    edited = dataclasses.replace(ACTOR, role="adjoint").to_header().encode()
    with pytest.raises(SignatureError):
        wire.open(_with_header(record, "ce_actor", edited))
    stripped = dataclasses.replace(record, headers=tuple(h for h in record.headers if h[0] != "ce_actor"))
    with pytest.raises(SignatureError):  # removing the actor changes the signed bytes' version
        wire.open(stripped)


def test_an_actor_added_to_an_event_signed_without_one_fails_verification(wire):
    record = wire.seal(company_event())
    added = dataclasses.replace(record, headers=(*record.headers, ("ce_actor", ACTOR.to_header().encode())))
    with pytest.raises(SignatureError):
        wire.open(added)


@pytest.mark.parametrize("text", ['{"sub":"x"}', "not json", '{"iss":"a","sub":"b","token_sha256":"c","x":1}',
                                  '{"sub": "b", "iss": "a", "token_sha256": "c"}', '{"amr":"pwd","iss":"a","sub":"b",'
                                  '"token_sha256":"c"}'])
def test_a_malformed_actor_header_is_an_envelope_error(wire, text):
    record = wire.seal(dataclasses.replace(company_event(), actor=ACTOR))
    with pytest.raises(EnvelopeError) as caught:
        wire.open(_with_header(record, "ce_actor", text.encode()))
    assert caught.value.context["header"] == "ce_actor"


def test_a_role_is_a_lower_case_word():
    with pytest.raises(EnvelopeError):
        dataclasses.replace(ACTOR, role="Maire de la commune")


def test_an_addressed_event_names_its_actor_too(catalog, directory, key):
    """v3 signs the recipients and the actor together: the recipient reads both, an edit of either fails."""
    from bus import DecryptionKeyring, Wire, generate_encryption_key

    from .conftest import T0

    enc = generate_encryption_key("130006000")
    wire = Wire(catalog, directory, key, source="urn:siren:213105554:test", clock=lambda: T0,
                encryption_keys={"130006000": enc.public}, decryption=DecryptionKeyring([enc]))
    record = wire.seal(dataclasses.replace(company_event(), recipients=("130006000",), actor=ACTOR))
    received = wire.open(record)
    assert received.actor == ACTOR and received.data["name"] == "ACME"
    with pytest.raises(SignatureError):
        wire.open(_with_header(record, "ce_recipients", b"130004005"))
    with pytest.raises(SignatureError):
        wire.open(_with_header(record, "ce_actor", dataclasses.replace(ACTOR, sub="agent-2").to_header().encode()))
