"""A listing page's keys and ETags as text: the shortcuts for plain text change nothing."""

from __future__ import annotations

from urllib.parse import quote

import pytest

from orchestrator.emulator import wire
from tests.emulator.test_store import AWKWARD

TEXTS = [*AWKWARD, "plain/key-1_2.~jpg", '"0123abcdef"', "a&b<c>d\re", "tab\there", "%41", ""]


def _escaped_as_before(text: str) -> str:
    text = wire._NOT_XML.sub("\ufffd", text)
    for raw, escaped in (("&", "&amp;"), ("<", "&lt;"), (">", "&gt;"), ("\r", "&#13;")):
        text = text.replace(raw, escaped)
    return text


@pytest.mark.parametrize("text", TEXTS + [chr(c) for c in range(128)])
def test_text_is_escaped_and_url_encoded_as_without_the_shortcut(text: str) -> None:
    assert wire.xml_text(text) == _escaped_as_before(text)
    assert wire.url_encode(text) == quote(text, safe="/-_.~")
