"""Signing against every vector of the wire reference (ci-api.md §9)."""

from __future__ import annotations

import hashlib
import hmac

from orchestrator.cloud.signing import Credentials, authorization, parse_authorization, uri_encode

DOC = Credentials("AKIDQjz3ltompVjBni5LitkWHFlFpwkn9U5q", "BQYIM75p8x0iWVFSIgqEKwFprpRSVHlz")
START, END = 1557989151, 1557996351

DOC_PUT_HEADERS = {
    "Date": "Thu, 16 May 2019 06:45:51 GMT",
    "Host": "examplebucket-1250000000.cos.ap-beijing.myqcloud.com",
    "Content-Type": "text/plain",
    "Content-Length": "13",
    "Content-MD5": "mQ/fVh815F3k6TAUm8m0eg==",
    "x-cos-acl": "private",
    "x-cos-grant-read": 'uin="100000000011"',
}


def test_sign_key_matches_the_documented_value() -> None:
    key = hmac.new(DOC.secret_key.encode(), b"1557989151;1557996351", hashlib.sha1).hexdigest()
    assert key == "eb2519b498b02ac213cb1f3d1a3d27a3b3c9bc5f"


def test_documented_put_signed_with_every_header_matches_the_doc_signature() -> None:
    auth = parse_authorization(
        authorization(
            "PUT",
            "/exampleobject(腾讯云)",
            {},
            DOC_PUT_HEADERS,
            DOC,
            START,
            END,
            sign_all_headers=True,
        )
    )
    assert auth["q-header-list"] == (
        "content-length;content-md5;content-type;date;host;x-cos-acl;x-cos-grant-read"
    )
    assert auth["q-signature"] == "3b8851a11a569213c17ba8fa7dcf2abec6935172"


def test_documented_put_signed_like_the_python_sdk_drops_date() -> None:
    auth = parse_authorization(
        authorization("PUT", "/exampleobject(腾讯云)", {}, DOC_PUT_HEADERS, DOC, START, END)
    )
    assert (
        auth["q-header-list"]
        == "content-length;content-md5;content-type;host;x-cos-acl;x-cos-grant-read"
    )
    assert auth["q-signature"] == "fc4e4717b501da12715d5fc84a4880a87ad2b7ab"


def test_list_pic_jobs_with_a_ci_token_matches_the_sdk_vector() -> None:
    params = {
        "tag": "PicProcess",
        "orderByTime": "Desc",
        "states": "All",
        "size": "10",
        "nextToken": "",
        "queueId": "p2911917386e148639319e13c285cc774",
    }
    headers = {
        "host": "test-1250000000.ci.ap-beijing.myqcloud.com",
        "x-ci-security-token": "TOKEN123",
    }
    auth = parse_authorization(authorization("GET", "/pic_jobs", params, headers, DOC, START, END))
    assert auth == {
        "q-sign-algorithm": "sha1",
        "q-ak": DOC.secret_id,
        "q-sign-time": "1557989151;1557996351",
        "q-key-time": "1557989151;1557996351",
        "q-header-list": "host;x-ci-security-token",
        "q-url-param-list": "nexttoken;orderbytime;queueid;size;states;tag",
        "q-signature": "a768554c54e206c8a53e9be4b51331489ffb2fa2",
    }


def test_uri_encode_escapes_slash_space_and_punctuation_but_not_unreserved() -> None:
    assert uri_encode("a/b c+d~e-f_g.h") == "a%2Fb%20c%2Bd~e-f_g.h"
    assert uri_encode("腾讯云") == "%E8%85%BE%E8%AE%AF%E4%BA%91"


def test_credentials_repr_and_str_hide_the_secret_and_token() -> None:
    creds = Credentials("AKIDexample", "very-secret-key", "session-token-xyz")
    for text in (repr(creds), str(creds)):
        assert "very-secret-key" not in text
        assert "session-token-xyz" not in text
