"""Output-key templates: the placeholders of an input key, and a template rendered for a key.

The manifest checks templates against each other with these; the planner renders one per item.
"""

from __future__ import annotations

import posixpath
import string
from collections.abc import Callable

__all__ = ["compile_output", "key_parts", "render_output"]


def key_parts(key: str) -> dict[str, str]:
    """The values of the output placeholders for `key`: key, dir, name, stem and ext (no dot)."""
    directory, _, name = key.rpartition("/")
    stem, dot_ext = posixpath.splitext(name)
    return {"key": key, "dir": directory, "name": name, "stem": stem, "ext": dot_ext[1:]}


def compile_output(template: str) -> Callable[[str], str]:
    """`render_output` for one template, parsed once: expansion renders it for every object."""
    parts = [
        (literal, field) for literal, field, _spec, _conv in string.Formatter().parse(template)
    ]
    if all(field in (None, "key") for _literal, field in parts):
        # The common `out/{key}`: one C-level format call per object, no key split.
        pattern = "".join(
            literal.replace("{", "{{").replace("}", "}}") + ("" if field is None else "{0}")
            for literal, field in parts
        )
        return pattern.format

    def render(key: str) -> str:
        values = key_parts(key)
        pieces: list[str] = []
        drop_slash = False
        for literal, field in parts:
            pieces.append(literal.removeprefix("/") if drop_slash else literal)
            drop_slash = field == "dir" and not values["dir"]
            if field is not None:
                pieces.append(values[field])
        return "".join(pieces)

    return render


def render_output(template: str, key: str) -> str:
    """Fill `template` for `key`. An empty {dir} drops the '/' that follows it.

    The template is assumed valid (see `output_template_problem`).
    """
    return compile_output(template)(key)
