"""A fake STS answering `AssumeRoleWithWebIdentity` (the TKE OIDC path) with the emulator's
temporary credentials. The SDK's CommonClient POSTs JSON to `/` with an `X-TC-Action` header;
point PICJOBS_STS_ENDPOINT at the emulator's URL. Any non-empty web-identity token is accepted
for a role ARN that begins with `qcs::cam::`."""

from __future__ import annotations

import json
import uuid
from typing import Any

from aiohttp import web

from orchestrator.emulator.metadata import Issuer

__all__ = ["serve_sts"]

_REQUIRED = ("ProviderId", "WebIdentityToken", "RoleArn", "RoleSessionName")


def _json(body: dict[str, Any]) -> web.Response:
    # Exactly `application/json`, as STS sends: the SDK only looks for errors in that type.
    headers = {"Content-Type": "application/json"}
    return web.Response(body=json.dumps(body).encode(), headers=headers)


def _error(code: str, message: str) -> web.Response:
    body = {
        "Response": {"Error": {"Code": code, "Message": message}, "RequestId": str(uuid.uuid4())}
    }
    return _json(body)


async def serve_sts(request: web.Request, issuer: Issuer | None) -> web.Response:
    action = request.headers.get("X-TC-Action", "")
    if action != "AssumeRoleWithWebIdentity":
        return _error("InvalidAction", f"the action {action} is not supported")
    if issuer is None:
        return _error("ResourceUnavailable", "the emulator issues no temporary credentials")
    try:
        params: Any = json.loads(await request.read() or b"{}")
    except ValueError:
        return _error("InvalidParameter", "the body is not JSON")
    if not isinstance(params, dict):
        return _error("InvalidParameter", "the body is not a JSON object")
    for name in _REQUIRED:
        if not params.get(name):
            return _error("MissingParameter", f"the request lacks {name}")
    if not str(params["RoleArn"]).startswith("qcs::cam::"):
        return _error("InvalidParameter.RoleArn", "the role ARN is malformed")
    issuer.counts["sts"] += 1
    issued = issuer.current().as_json()
    body = {
        "Response": {
            "Credentials": {k: issued[k] for k in ("TmpSecretId", "TmpSecretKey", "Token")},
            "ExpiredTime": issued["ExpiredTime"],
            "Expiration": issued["Expiration"],
            "RequestId": str(uuid.uuid4()),
        }
    }
    return _json(body)
