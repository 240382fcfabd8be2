"""Signature verification: CI answers 401 with its codes, COS 403 with its own."""

from __future__ import annotations

import time
from collections.abc import AsyncIterator
from dataclasses import replace

import aiohttp
import pytest

from orchestrator.cloud.signing import Credentials, authorization
from orchestrator.emulator.server import EmulatorConfig, running_emulator
from tests.emulator.support import CI_HOST, COS_HOST, CREDS, Client

WRONG_KEY = Credentials(CREDS.secret_id, "not-the-secret-key")
WRONG_ID = Credentials("AKIDsomebodyElse", CREDS.secret_key)
TOKEN = "session-token-123"


def expired() -> tuple[int, int]:
    now = int(time.time())
    return now - 7200, now - 3600


async def ci_call(client: Client, **kwargs: object) -> tuple[int, str | None, str | None]:
    reply = await client.request("GET", "/picqueue", params={"state": "All"}, **kwargs)  # type: ignore[arg-type]
    return reply.status, reply.text("Code"), reply.text("Message")


async def cos_call(client: Client, **kwargs: object) -> tuple[int, str | None, str | None]:
    reply = await client.request("GET", "/", params={"prefix": ""}, host=COS_HOST, **kwargs)  # type: ignore[arg-type]
    return reply.status, reply.text("Code"), reply.text("Message")


async def test_a_correctly_signed_request_is_served(client: Client) -> None:
    assert (await ci_call(client))[0] == 200
    assert (await cos_call(client))[0] == 200


@pytest.mark.parametrize(
    ("kwargs", "ci", "cos"),
    [
        ({"sign": False}, (401, "MissingAuthorization"), (403, "AccessDenied")),
        ({"credentials": WRONG_KEY}, (401, "InvalidAuthorization"), (403, "SignatureDoesNotMatch")),
        ({"credentials": WRONG_ID}, (401, "SecretidNotExist"), (403, "InvalidAccessKeyId")),
        ({"window": expired()}, (401, "SignatureExpired"), (403, "AccessDenied")),
    ],
)
async def test_a_bad_signature_gets_the_ci_or_cos_status_and_code(
    client: Client,
    kwargs: dict[str, object],
    ci: tuple[int, str],
    cos: tuple[int, str],
) -> None:
    assert (await ci_call(client, **kwargs))[:2] == ci
    assert (await cos_call(client, **kwargs))[:2] == cos


async def test_an_expired_cos_signature_says_request_has_expired(client: Client) -> None:
    assert await cos_call(client, window=expired()) == (403, "AccessDenied", "Request has expired")


async def test_a_window_far_in_the_future_is_request_time_too_skewed_on_cos(
    client: Client,
) -> None:
    now = int(time.time())

    assert (await cos_call(client, window=(now + 3600, now + 7200)))[:2] == (
        403,
        "RequestTimeTooSkewed",
    )


async def test_a_tampered_signed_parameter_does_not_match(client: Client) -> None:
    reply = await client.request(
        "GET", "/picqueue", params={"state": "Paused"}, signed_params={"state": "All"}
    )

    assert (reply.status, reply.text("Code")) == (401, "InvalidAuthorization")


async def test_unsigned_parameters_and_headers_are_ignored(client: Client) -> None:
    reply = await client.request(
        "GET",
        "/picqueue",
        params={"state": "All", "extra": "1"},
        signed_params={"state": "All"},
        headers={"X-Unlisted": "1"},
    )

    assert reply.status == 200


async def test_the_host_actually_received_is_what_gets_verified(client: Client) -> None:
    # Signed for the CI host, sent with the COS host: the signature cannot match.
    now = int(time.time())
    auth = authorization("GET", "/picqueue", {}, {"host": CI_HOST}, CREDS, now - 60, now + 60)
    reply = await client.request(
        "GET", "/picqueue", headers={"Authorization": auth}, host=COS_HOST, sign=False
    )

    assert (reply.status, reply.text("Code")) == (401, "InvalidAuthorization")


async def test_a_malformed_authorization_is_invalid_authorization(client: Client) -> None:
    reply = await client.request(
        "GET", "/picqueue", headers={"Authorization": "q-sign-algorithm=md5&q-ak=x"}, sign=False
    )

    assert (reply.status, reply.text("Code")) == (401, "InvalidAuthorization")


async def test_the_signature_may_travel_as_query_parameters(client: Client) -> None:
    now = int(time.time())
    auth = authorization("GET", "/picqueue", {}, {"host": CI_HOST}, CREDS, now - 60, now + 60)
    params = dict(part.split("=", 1) for part in auth.split("&"))

    reply = await client.request("GET", "/picqueue", params=params, sign=False)

    assert reply.status == 200


@pytest.fixture
async def token_client(config: EmulatorConfig) -> AsyncIterator[Client]:
    config = replace(config, credentials=replace(CREDS, token=TOKEN))
    async with running_emulator(config) as emu, aiohttp.ClientSession() as session:
        yield Client(session, emu, CREDS)


@pytest.mark.parametrize("header", ["x-ci-security-token", "x-cos-security-token"])
async def test_a_signed_security_token_is_accepted_in_either_header_on_any_path(
    token_client: Client, header: str
) -> None:
    assert (await ci_call(token_client, headers={header: TOKEN}))[0] == 200
    assert (await cos_call(token_client, headers={header: TOKEN}))[0] == 200


async def test_a_missing_wrong_or_unsigned_token_is_refused(token_client: Client) -> None:
    missing = await ci_call(token_client)
    wrong = await ci_call(token_client, headers={"x-ci-security-token": "forged"})
    cos_missing = await cos_call(token_client)

    assert missing[:2] == (401, "AccessDenied")
    assert wrong[:2] == (401, "AccessDenied")
    assert cos_missing[:2] == (403, "AccessDenied")

    # Signed without the token header, then the header added: not covered by the signature.
    now = int(time.time())
    auth = authorization("GET", "/picqueue", {}, {"host": CI_HOST}, CREDS, now - 60, now + 60)
    unsigned = await token_client.request(
        "GET",
        "/picqueue",
        headers={"Authorization": auth, "x-ci-security-token": TOKEN},
        sign=False,
    )
    assert (unsigned.status, unsigned.text("Code")) == (401, "AccessDenied")
    assert "not signed" in (unsigned.text("Message") or "")


async def test_without_credentials_nothing_is_checked(config: EmulatorConfig) -> None:
    async with (
        running_emulator(replace(config, credentials=None)) as emu,
        aiohttp.ClientSession() as session,
    ):
        reply = await Client(session, emu, CREDS).request("GET", "/picqueue", sign=False)

    assert reply.status == 200


async def test_control_endpoints_need_no_signature(client: Client) -> None:
    stats = await client.control("GET", "stats")

    assert stats["jobs_created"] == 0


async def test_a_wrong_key_fails_in_a_window_the_right_key_was_just_accepted_in(
    client: Client,
) -> None:
    now = int(time.time())
    window = (now - 60, now + 600)

    assert (await ci_call(client, window=window))[0] == 200
    assert (await ci_call(client, window=window, credentials=WRONG_KEY))[:2] == (
        401,
        "InvalidAuthorization",
    )
    assert (await ci_call(client, window=(now - 61, now + 600)))[0] == 200
