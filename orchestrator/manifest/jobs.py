"""Checks between the jobs of one manifest: names, and outputs that could overwrite each other."""

from __future__ import annotations

import re
import string
from typing import Final

from orchestrator.manifest.model import JobConfig
from orchestrator.manifest.outputs import compile_output

__all__ = ["JOB_NAME", "output_clash"]

JOB_NAME: Final = re.compile(r"^[A-Za-z0-9_-]+$")

# Input keys that tell templates apart: with and without folder, extension, dots in the name.
_PROBES: Final = ("p/q/r.jpg", "r.jpg", "p/q/r", "p/q/.r", "p/q/r.s.jpg")
_EXTENSION = re.compile(r"\.([A-Za-z0-9]+)")


def output_clash(first: JobConfig, second: JobConfig) -> str | None:
    """Why two jobs can write the same object for one input, or None when they cannot be shown
    to. Expansion still checks every planned output, so this is the early, named warning."""
    if first.output_bucket != second.output_bucket:
        return None
    render_first, render_second = compile_output(first.output), compile_output(second.output)
    extensions = {
        found
        for template in (first.output, second.output)
        for literal, *_ in string.Formatter().parse(template)
        for found in _EXTENSION.findall(literal or "")
    }
    for key in (*_PROBES, *(f"p/q/r.{ext}" for ext in sorted(extensions))):
        output = render_first(key)
        if output and output == render_second(key):
            return (
                f"jobs {first.name!r} and {second.name!r} can write the same object"
                f" (both write {output} for {key} in {first.output_bucket});"
                " give them different outputs or output buckets"
            )
    return None
