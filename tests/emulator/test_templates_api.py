"""`POST /template` and `GET /template`: picture templates in CI's documented shapes."""

from __future__ import annotations

import pytest

from orchestrator.emulator.model import parse_ci_time
from tests.emulator.support import BUCKET, Client, submit_ok


def template_xml(
    name: str = "thumb-200",
    rule: str = "imageMogr2/thumbnail/200x",
    *,
    tag: str = "PicProcess",
    is_pic_info: str | None = "true",
) -> bytes:
    info = f"<IsPicInfo>{is_pic_info}</IsPicInfo>" if is_pic_info is not None else ""
    return (
        f"<Request><Tag>{tag}</Tag><Name>{name}</Name>"
        f"<PicProcess>{info}<ProcessRule>{rule}</ProcessRule></PicProcess></Request>"
    ).encode()


async def create(client: Client, body: bytes) -> str:
    reply = await client.request("POST", "/template", body=body)
    assert reply.status == 200, reply.body
    template_id = reply.text("Template/TemplateId")
    assert template_id
    return template_id


async def test_a_created_template_is_answered_in_the_documented_shape(client: Client) -> None:
    reply = await client.request("POST", "/template", body=template_xml())

    assert reply.status == 200, reply.body
    assert reply.headers["Server"] == "tencent-ci"
    root = reply.xml()
    assert [child.tag for child in root] == ["RequestId", "Template"]
    template = root.find("Template")
    assert template is not None
    assert [child.tag for child in template] == [
        "Tag", "TemplateId", "Name", "BucketId", "Category", "PicProcess", "CreateTime",
        "UpdateTime",
    ]  # fmt: skip
    assert reply.text("Template/Tag") == "PicProcess"
    assert reply.text("Template/Name") == "thumb-200"
    assert reply.text("Template/BucketId") == BUCKET
    assert reply.text("Template/Category") == "Custom"
    assert reply.text("Template/PicProcess/IsPicInfo") == "true"
    assert reply.text("Template/PicProcess/ProcessRule") == "imageMogr2/thumbnail/200x"
    template_id = reply.text("Template/TemplateId") or ""
    assert template_id.startswith("t") and len(template_id) == 33
    parse_ci_time(reply.text("Template/CreateTime") or "")


async def test_templates_are_listed_found_by_id_and_by_name_prefix_and_paged(
    client: Client,
) -> None:
    first = await create(client, template_xml("web-small", is_pic_info=None))
    second = await create(client, template_xml("web-large"))
    await create(client, template_xml("print-a4"))

    everything = await client.request("GET", "/template")
    by_id = await client.request(
        "GET", "/template", params={"ids": f"{second},tnosuch", "category": "Custom"}
    )
    by_name = await client.request("GET", "/template", params={"name": "web-"})
    paged = await client.request(
        "GET", "/template", params={"name": "web-", "pageNumber": "2", "pageSize": "1"}
    )

    assert everything.text("TotalCount") == "4"  # and the emulator's preset
    assert everything.text("PageNumber") == "1"
    assert everything.text("PageSize") == "10"
    assert by_id.texts("TemplateList/TemplateId") == [second]
    assert by_id.text("TemplateList/PicProcess/IsPicInfo") == "true"
    assert by_name.texts("TemplateList/Name") == ["web-small", "web-large"]
    assert by_name.texts("TemplateList/TemplateId") == [first, second]
    assert (paged.text("TotalCount"), paged.texts("TemplateList/Name")) == ("2", ["web-large"])


async def test_other_tags_and_the_official_category_hold_no_templates(client: Client) -> None:
    await create(client, template_xml())
    for params in ({"tag": "Transcode"}, {"category": "Official"}):
        reply = await client.request("GET", "/template", params=params)
        assert reply.status == 200
        assert (reply.text("TotalCount"), reply.texts("TemplateList")) == ("0", [])


@pytest.mark.parametrize(
    ("body", "message"),
    [
        (template_xml(tag="Transcode"), "Tag must be PicProcess"),
        (template_xml(name="has space"), "Name must be"),
        (template_xml(name="x" * 65), "Name must be"),
        (template_xml(rule=""), "ProcessRule is required"),
        (template_xml(rule="imageMogr2/nonsense/1"), ""),
        (template_xml(is_pic_info="yes"), "IsPicInfo must be true or false"),
        (b"<Request><Tag>PicProcess</Tag><Name>n</Name></Request>", "PicProcess is required"),
    ],
)
async def test_bad_templates_are_refused_with_invalid_argument(
    client: Client, body: bytes, message: str
) -> None:
    reply = await client.request("POST", "/template", body=body)

    assert reply.status == 400
    assert reply.text("Code") == "InvalidArgument"
    assert message in (reply.text("Message") or "")


async def test_a_second_template_with_the_same_name_is_refused(client: Client) -> None:
    await create(client, template_xml("same"))
    reply = await client.request(
        "POST", "/template", body=template_xml("same", "imageMogr2/flip/x")
    )
    assert (reply.status, reply.text("Code")) == (400, "InvalidArgument")


async def test_bad_paging_is_refused(client: Client) -> None:
    for params in ({"pageSize": "101"}, {"pageNumber": "0"}, {"pageSize": "ten"}):
        reply = await client.request("GET", "/template", params=params)
        assert (reply.status, reply.text("Code")) == (400, "InvalidArgument")


async def test_a_job_names_a_created_template_and_runs_its_rule(client: Client) -> None:
    template_id = await create(client, template_xml("turn", "imageMogr2/rotate/90"))
    job_id = await submit_ok(
        client,
        rule=None,
        extra_operation=f"<TemplateId>{template_id}</TemplateId>",
        output_object="out/turned.jpg",
    )

    reply = await client.request("GET", f"/pic_jobs/{job_id}")
    assert reply.text("JobsDetail/State") == "Success"
    assert reply.text("JobsDetail/Operation/TemplateName") == "turn"
    # The 40x20 input, turned.
    assert reply.text("JobsDetail/Operation/PicProcessResult/ProcessResult/Width") == "20"
