"""Properties of signing: whatever a client signs, the emulator's verifier accepts as received,
and refuses once any signed part changes; object keys survive the trip through the URL.

The wire between `authorization()` and `verify()` is modelled exactly as the client writes it
(`CIClient._call`: the path quoted, the query `uri_encode`d) and as the emulator reads it
(`emulator.app`: the raw path unquoted, the query split by `parse_qsl`). The last tests send
real requests through `CIClient` to an emulator on loopback.
"""

from __future__ import annotations

import asyncio
import string
from collections.abc import Iterator
from urllib.parse import parse_qsl, quote, unquote

import pytest
from hypothesis import assume, example, given, settings
from hypothesis import strategies as st

from orchestrator.cloud.client import CIClient, ClientSettings
from orchestrator.cloud.signing import Credentials, authorization, parse_authorization, uri_encode
from orchestrator.emulator import auth
from orchestrator.emulator.errors import ApiError
from orchestrator.emulator.server import EmulatorConfig, EmulatorThread, RunningEmulator
from orchestrator.exceptions import ServiceError

CREDS = Credentials("AKIDpropertyTests00000", "property-tests-secret-key")
START, END = 1_700_000_000, 1_700_000_900
NOW = START + 60

# Enough examples to find the edges, few enough to keep the suite fast.
moderate = settings(max_examples=30, deadline=None)

# Any text a str can carry on the wire (UTF-8), so no lone surrogates.
text = st.text(st.characters(codec="utf-8"), max_size=24)
methods = st.sampled_from(["GET", "PUT", "POST", "DELETE", "HEAD"]) | st.text(
    string.ascii_letters, min_size=1, max_size=8
)
paths = st.builds(lambda rest: "/" + rest, text)
# A parameter always has a name (the verifier reads an empty name in the list as no name).
params = st.dictionaries(text.filter(bool), text, max_size=5)
# Header names are HTTP tokens; values are what an HTTP header can carry, without the
# surrounding whitespace that HTTP itself strips.
token = st.text(string.ascii_letters + string.digits + "!#$%&'*+-.^_`|~", min_size=1, max_size=16)
header_names = token | st.builds(lambda p, t: p + t, st.sampled_from(["x-cos-", "x-ci-"]), token)
header_values = st.text(st.characters(min_codepoint=0x20, max_codepoint=0x7E), max_size=24).map(
    str.strip
)
headers = st.dictionaries(header_names, header_values, max_size=5).map(
    lambda found: {"Host": "b-1250000000.ci.ap-guangzhou.myqcloud.com", **found}
)


def on_the_wire(path: str, query: dict[str, str]) -> tuple[str, list[tuple[str, str]]]:
    """What the emulator decodes from what the client encodes."""
    raw_path = quote(path, safe="/-_.~,")
    raw_query = "&".join(f"{uri_encode(k)}={uri_encode(v)}" for k, v in query.items())
    return unquote(raw_path), parse_qsl(raw_query, keep_blank_values=True)


def headers_by_lower_name(found: dict[str, str]) -> dict[str, str]:
    """HTTP header names are case-insensitive: a request carries each name once."""
    out: dict[str, str] = {}
    for name, value in found.items():
        if name.lower() not in {key.lower() for key in out}:
            out[name] = value
    return out


def verified(
    method: str,
    path: str,
    query: dict[str, str],
    sent_headers: dict[str, str],
    *,
    sign_all_headers: bool,
    received: dict[str, str] | None = None,
) -> bool:
    signature = authorization(
        method,
        path,
        query,
        sent_headers,
        CREDS,
        START,
        END,
        sign_all_headers=sign_all_headers,
    )
    got_path, got_params = on_the_wire(path, query)
    got_headers = {**(sent_headers if received is None else received), "Authorization": signature}
    try:
        auth.verify(method, got_path, got_params, got_headers.items(), CREDS, ci=True, now=NOW)
    except ApiError:
        return False
    return True


def canonical_names(query: dict[str, str]) -> list[str]:
    return [uri_encode(name).lower() for name in query]


@moderate
@given(methods, paths, params, headers.map(headers_by_lower_name), st.booleans())
@example("GET", "/a/../b", {"a b": "c&d=e"}, {"Host": "h", "x-cos-a!b": "1"}, True)
@example("PUT", "/%2F/相册/?#", {"+": " ", "a%20": ""}, {"Host": "h"}, False)
def test_every_request_the_client_signs_is_accepted_by_the_emulator_verifier(
    method: str, path: str, query: dict[str, str], sent: dict[str, str], sign_all: bool
) -> None:
    # Names that differ only in case are one parameter to CI; a client never sends both.
    assume(len(set(canonical_names(query))) == len(query))
    assert verified(method, path, query, sent, sign_all_headers=sign_all)


@moderate
@given(methods, paths, params, headers.map(headers_by_lower_name), text)
def test_a_changed_path_is_refused(
    method: str, path: str, query: dict[str, str], sent: dict[str, str], suffix: str
) -> None:
    assume(suffix and len(set(canonical_names(query))) == len(query))
    signature = authorization(method, path, query, sent, CREDS, START, END)
    got_path, got_params = on_the_wire(path + suffix, query)
    with pytest.raises(ApiError):
        auth.verify(
            method,
            got_path,
            got_params,
            {**sent, "Authorization": signature}.items(),
            CREDS,
            ci=True,
            now=NOW,
        )


@moderate
@given(methods, paths, params.filter(bool), headers.map(headers_by_lower_name), st.data())
def test_a_changed_parameter_value_is_refused(
    method: str, path: str, query: dict[str, str], sent: dict[str, str], data: st.DataObject
) -> None:
    assume(len(set(canonical_names(query))) == len(query))
    name = data.draw(st.sampled_from(sorted(query)))
    other = data.draw(text.filter(lambda value: value != query[name]))
    signature = authorization(method, path, query, sent, CREDS, START, END)
    got_path, got_params = on_the_wire(path, {**query, name: other})
    with pytest.raises(ApiError):
        auth.verify(
            method,
            got_path,
            got_params,
            {**sent, "Authorization": signature}.items(),
            CREDS,
            ci=True,
            now=NOW,
        )


@moderate
@given(methods, paths, params, headers.map(headers_by_lower_name), st.data())
def test_a_changed_signed_header_value_is_refused(
    method: str, path: str, query: dict[str, str], sent: dict[str, str], data: st.DataObject
) -> None:
    assume(len(set(canonical_names(query))) == len(query))
    name = data.draw(st.sampled_from(sorted(sent)))
    other = data.draw(header_values.filter(lambda value: value != sent[name]))
    changed = {**sent, name: other}
    assert not verified(method, path, query, sent, sign_all_headers=True, received=changed)


@moderate
@given(methods, paths, params, headers.map(headers_by_lower_name))
def test_the_header_and_parameter_lists_name_what_was_signed(
    method: str, path: str, query: dict[str, str], sent: dict[str, str]
) -> None:
    fields = parse_authorization(
        authorization(method, path, query, sent, CREDS, START, END, sign_all_headers=True)
    )
    assert fields["q-url-param-list"] == ";".join(sorted(canonical_names(query)))
    assert fields["q-header-list"] == ";".join(sorted(uri_encode(n).lower() for n in sent))
    assert len(fields["q-signature"]) == 40


# Keys through the URL


keys = st.text(st.characters(codec="utf-8"), min_size=1, max_size=40)


@moderate
@given(keys)
def test_a_key_survives_the_client_quoting_and_the_emulator_unquoting(key: str) -> None:
    assert on_the_wire("/" + key, {})[0] == "/" + key


@moderate
@given(keys)
def test_a_key_survives_uri_encoding_in_a_query_parameter(key: str) -> None:
    assert on_the_wire("/", {"prefix": key})[1] == [("prefix", key)]


# Over real HTTP, through the client, to the emulator


@pytest.fixture(scope="module")
def emulator(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RunningEmulator]:
    data = tmp_path_factory.mktemp("signing-data")
    (data / "b-1250000000").mkdir()
    thread = EmulatorThread(
        EmulatorConfig(data_dir=data, credentials=CREDS, rate=None, default_bucket="b-1250000000")
    )
    thread.start()
    try:
        yield thread.running
    finally:
        thread.stop()


def _answer(emulator: RunningEmulator, call: str, value: str) -> str:
    """The error code the emulator answers a real client with, or 'OK'."""

    async def go() -> str:
        config = ClientSettings(
            "b-1250000000", "ap-guangzhou", CREDS, endpoint=emulator.url, concurrency=1
        )
        async with CIClient(config) as client:
            try:
                if call == "get":
                    await client.get_object(value)
                else:
                    await client.list_objects_page(prefix=value, marker=value, max_keys=1)
            except ServiceError as exc:
                return exc.code
        return "OK"

    return asyncio.run(go())


SIGNATURE_CODES = {"SignatureDoesNotMatch", "AccessDenied", "InvalidAuthorization"}
http_settings = settings(max_examples=25, deadline=None)


@http_settings
@given(keys.filter(lambda key: "/./" not in f"/{key}/" and "/../" not in f"/{key}/"))
def test_a_get_of_any_key_through_the_client_passes_the_emulator_signature_check(
    emulator: RunningEmulator, key: str
) -> None:
    assert _answer(emulator, "get", key) not in SIGNATURE_CODES


@http_settings
@given(text)
def test_a_listing_with_any_prefix_and_marker_passes_the_emulator_signature_check(
    emulator: RunningEmulator, value: str
) -> None:
    assert _answer(emulator, "list", value) == "OK"


@pytest.mark.parametrize("key", ["photos/../secret.jpg", "photos/./a.jpg", "..", "a/.."])
def test_a_key_with_dot_segments_is_requested_as_signed(
    emulator: RunningEmulator, key: str
) -> None:
    assert _answer(emulator, "get", key) == "NoSuchKey"
