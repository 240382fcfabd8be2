"""CI's picture-template API: `POST /template` creates one, `GET /template` lists and finds them.

Shapes from Tencent's documentation (sources in docs/emulator.md): the request is
`<Request><Tag>PicProcess</Tag><Name/><PicProcess><IsPicInfo/><ProcessRule/></PicProcess>
</Request>`; a template is answered as `<Tag/><TemplateId/><Name/><BucketId/><Category/>
<PicProcess>…</PicProcess><CreateTime/><UpdateTime/>`, inside `<Template>` after a create and in
one `<TemplateList>` each after a query, with `TotalCount`, `PageNumber` and `PageSize`.

Only PicProcess templates exist here, all of category Custom; a query for another tag or for
the Official category finds none. `PUT`/`DELETE /template/<id>` are not served: those paths are
object keys under `template/` to the emulator's path-only routing.
"""

from __future__ import annotations

import re
from typing import TYPE_CHECKING

from aiohttp import web
from lxml import etree

from orchestrator.emulator import wire
from orchestrator.emulator.errors import InvalidArgument, RequestEntityTooLarge
from orchestrator.emulator.handlers import MAX_CI_BODY
from orchestrator.emulator.model import Template, ci_time

if TYPE_CHECKING:
    from orchestrator.emulator.app import Call

__all__ = ["create_template", "list_templates"]

MAX_PAGE_SIZE = 100
# Documented: Chinese, English letters, digits, '_', '-' and '*', at most 64 characters.
_NAME = re.compile(r"[\w*-]{1,64}")


def _template(parent: etree._Element, tag: str, template: Template, bucket: str) -> None:
    node = etree.SubElement(parent, tag)
    for child, value in (
        ("Tag", "PicProcess"),
        ("TemplateId", template.template_id),
        ("Name", template.name),
        ("BucketId", bucket),
        ("Category", "Custom"),
    ):
        etree.SubElement(node, child).text = value
    pic = etree.SubElement(node, "PicProcess")
    etree.SubElement(pic, "IsPicInfo").text = "true" if template.is_pic_info else "false"
    etree.SubElement(pic, "ProcessRule").text = template.rule
    etree.SubElement(node, "CreateTime").text = ci_time(template.create_time)
    etree.SubElement(node, "UpdateTime").text = ci_time(template.update_time)


def _text(root: etree._Element, path: str) -> str:
    return (root.findtext(path) or "").strip()


async def create_template(call: Call) -> web.StreamResponse:
    raw = await call.request.read()
    if len(raw) > MAX_CI_BODY:
        raise RequestEntityTooLarge()
    root = wire.parse_body(raw)
    tag, name = _text(root, "Tag"), _text(root, "Name")
    if tag != "PicProcess":
        raise InvalidArgument(f"Tag must be PicProcess, not {tag!r}")
    if not _NAME.fullmatch(name):
        raise InvalidArgument(
            "Name must be 1 to 64 letters, digits, Chinese characters, '_', '-' or '*'"
        )
    if root.find("PicProcess") is None:
        raise InvalidArgument("PicProcess is required")
    rule = _text(root, "PicProcess/ProcessRule")
    if not rule:
        raise InvalidArgument("PicProcess/ProcessRule is required")
    is_pic_info = _text(root, "PicProcess/IsPicInfo") or "false"
    if is_pic_info not in ("true", "false"):
        raise InvalidArgument("PicProcess/IsPicInfo must be true or false")
    template = call.backend.create_template(name, rule, is_pic_info=is_pic_info == "true")
    body = etree.Element("Response")
    etree.SubElement(body, "RequestId").text = call.request_id
    _template(body, "Template", template, call.bucket)
    return call.xml(wire.to_bytes(body))


def _page_param(query: dict[str, str], name: str, default: int, high: int | None) -> int:
    text = query.get(name, "").strip()
    if not text:
        return default
    try:
        value = int(text)
    except ValueError:
        raise InvalidArgument(f"{name} must be an integer") from None
    if value < 1 or (high is not None and value > high):
        raise InvalidArgument(
            f"{name} must be at least 1" + (f" and at most {high}" if high else "")
        )
    return value


async def list_templates(call: Call) -> web.StreamResponse:
    query = call.query
    number = _page_param(query, "pageNumber", 1, None)
    size = _page_param(query, "pageSize", 10, MAX_PAGE_SIZE)
    ids = [tid for tid in query.get("ids", "").split(",") if tid.strip()] or None
    found: list[Template] = []
    tag, category = query.get("tag", "") or "All", query.get("category", "") or "Custom"
    if tag in ("All", "PicProcess") and category == "Custom":
        found = call.backend.find_templates(ids, query.get("name", ""))
    body = etree.Element("Response")
    etree.SubElement(body, "RequestId").text = call.request_id
    etree.SubElement(body, "TotalCount").text = str(len(found))
    etree.SubElement(body, "PageNumber").text = str(number)
    etree.SubElement(body, "PageSize").text = str(size)
    for template in found[(number - 1) * size : number * size]:
        _template(body, "TemplateList", template, call.bucket)
    return call.xml(wire.to_bytes(body))
