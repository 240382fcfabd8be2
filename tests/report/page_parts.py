"""Reading a rendered report back: its tags, what could fetch something, the ids' text."""

from __future__ import annotations

import re
from html.parser import HTMLParser

# xmlns="http://www.w3.org/2000/svg" names a namespace; a browser never fetches it.
_XMLNS = re.compile(r"""\sxmlns(?::[\w-]+)?\s*=\s*(?:"[^"]*"|'[^']*')""")
_URL = re.compile(r"url\(\s*['\"]?([^'\")\s]*)", re.I)
_ABSOLUTE = re.compile(r"(?:https?:)?//[\w-]+(?:\.[\w-]+)+")
_REFERENCING = frozenset({"src", "href", "xlink:href", "action", "poster", "srcset", "data"})
_FETCHING_TAGS = frozenset(
    {"script", "link", "img", "image", "iframe", "object", "embed", "video", "audio", "source"}
)


class Page(HTMLParser):
    def __init__(self, text: str) -> None:
        super().__init__(convert_charrefs=True)
        self.raw = text
        self.tags: list[str] = []
        self.references: list[str] = []  # src, href, xlink:href... values
        self.css: list[str] = []  # <style> bodies and style attributes
        self.by_id: dict[str, str] = {}  # the text of each element with an id, outside charts
        self.text: list[str] = []
        self._open: list[tuple[str, str, list[str]]] = []
        self._svg_depth = 0
        self._in_style = False
        self.feed(text)
        self.close()

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        self.tags.append(tag)
        self._in_style = tag == "style"
        for name, value in attrs:
            if name in _REFERENCING:
                self.references.append(value or "")
            elif name == "style" and value:
                self.css.append(value)
            elif name == "id" and value and not self._svg_depth:
                self._open.append((tag, value, []))
        if tag == "svg":
            self._svg_depth += 1

    def handle_endtag(self, tag: str) -> None:
        self._in_style = False
        if tag == "svg":
            self._svg_depth -= 1
        if self._open and self._open[-1][0] == tag:
            _, ident, parts = self._open.pop()
            self.by_id[ident] = " ".join("".join(parts).split())

    def handle_data(self, data: str) -> None:
        if self._in_style:
            self.css.append(data)
        self.text.append(data)
        for _, _, parts in self._open:
            parts.append(data)

    def external_references(self) -> list[str]:
        """Whatever in the page could make a browser fetch something from anywhere."""
        found = [ref for ref in self.references if not ref.startswith("#")]
        found += [f"<{tag}>" for tag in self.tags if tag in _FETCHING_TAGS]
        for css in self.css:
            found += [f"url({u})" for u in _URL.findall(css) if not u.startswith("#")]
            if "@import" in css.lower():
                found.append("@import")
        found += _ABSOLUTE.findall(_XMLNS.sub("", self.raw))
        return found


def headline(page: Page) -> dict[str, int]:
    """The numbers of the headline tiles, by state (and `total`, `in-flight`)."""
    return {
        ident.removeprefix("count-"): int(text.replace(",", ""))
        for ident, text in page.by_id.items()
        if ident.startswith("count-")
    }
