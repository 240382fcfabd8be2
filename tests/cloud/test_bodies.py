"""The submit body written as text is byte for byte the one lxml serializes from a tree."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from lxml import etree

from orchestrator.cloud.bodies import build_submit, xml_text
from orchestrator.cloud.models import JobRequest


def _sub(parent: etree._Element, tag: str, text: str | None = None) -> etree._Element:
    el = etree.SubElement(parent, tag)
    if text is not None:
        el.text = text
    return el


def lxml_submit(req: JobRequest) -> bytes:
    """The body as it was built before, element by element with lxml: the reference."""
    root = etree.Element("Request")
    _sub(root, "Tag", "PicProcess")
    _sub(_sub(root, "Input"), "Object", req.input_object)
    op = _sub(root, "Operation")
    if req.template_id:
        _sub(op, "TemplateId", req.template_id)
    else:
        pic = _sub(op, "PicProcess")
        _sub(pic, "IsPicInfo", "true" if req.is_pic_info else "false")
        _sub(pic, "ProcessRule", req.process_rule or "")
    out = _sub(op, "Output")
    _sub(out, "Region", req.output_region)
    _sub(out, "Bucket", req.output_bucket)
    _sub(out, "Object", req.output_object)
    if req.user_data is not None:
        _sub(op, "UserData", req.user_data)
    if req.job_level is not None:
        _sub(op, "JobLevel", str(req.job_level))
    for tag, value in (
        ("QueueId", req.queue_id),
        ("CallBack", req.callback),
        ("CallBackFormat", req.callback_format),
        ("CallBackType", req.callback_type),
    ):
        if value:
            _sub(root, tag, value)
    if req.callback_mq:
        mq = _sub(root, "CallBackMqConfig")
        for name, value in zip(("MqRegion", "MqMode", "MqName"), req.callback_mq, strict=True):
            _sub(mq, name, value)
    return bytes(etree.tostring(root, xml_declaration=True, encoding="utf-8"))


# XML 1.0 characters, with the ones escaping cares about made likely.
_xml_chars = st.one_of(
    st.sampled_from("&<>\"'\r\n\t ]]>"),
    st.characters(blacklist_categories=("Cs",), blacklist_characters="\x00\ufffe\uffff").filter(
        lambda c: c in "\t\n\r" or c >= " "
    ),
)
_text = st.text(_xml_chars, max_size=30)
_maybe = st.none() | _text


@settings(max_examples=150, deadline=None)
@given(
    st.builds(
        JobRequest,
        input_object=_text,
        output_bucket=_text,
        output_region=_text,
        output_object=_text,
        queue_id=_maybe,
        template_id=_maybe,
        process_rule=_maybe,
        is_pic_info=st.booleans(),
        user_data=_maybe,
        job_level=st.none() | st.integers(-5, 10**6),
        callback=_maybe,
        callback_format=_maybe,
        callback_type=_maybe,
        callback_mq=st.none() | st.tuples(_text, _text, _text),
    )
)
def test_the_submit_body_is_the_bytes_lxml_would_serialize(req: JobRequest) -> None:
    assert build_submit(req) == lxml_submit(req)


@pytest.mark.parametrize("bad", ["a\x00b", "\x01", "\x0b", "\ufffe", "\ud800"])
def test_text_xml_cannot_carry_is_refused_as_lxml_refuses_it(bad: str) -> None:
    with pytest.raises(ValueError, match="XML compatible"):
        xml_text(bad)
    with pytest.raises(ValueError):
        lxml_submit(JobRequest(bad, "b", "r", "o"))
