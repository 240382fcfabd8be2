"""A small valid manifest, and helpers that load a variant of it or return its one-line error.

They write `thumbs.toml` in the working directory, which conftest.py makes a fresh temporary one.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from orchestrator.exceptions import ManifestError
from orchestrator.manifest import Manifest, load_manifest

# Line numbers matter: tests below point at them.
BASE = """\
name = "thumbs-nightly"

[target]
bucket = "examplebucket-1250000000"
region = "ap-chongqing"

[source]
prefix = "photos/"

[job]
process_rule = "imageMogr2/thumbnail/400x/format/webp"
output = "thumbs/{dir}/{stem}.webp"
"""


def after(anchor: str, *lines: str, text: str = BASE) -> str:
    """`text` with `lines` inserted after the line that starts with `anchor`."""
    out = []
    for line in text.splitlines():
        out.append(line)
        if line.startswith(anchor):
            out.extend(lines)
    return "\n".join(out) + "\n"


def load(text: str) -> Manifest:
    Path("thumbs.toml").write_text(text, encoding="utf-8")
    return load_manifest("thumbs.toml")


def error_of(text: str | bytes) -> str:
    path = Path("thumbs.toml")
    if isinstance(text, bytes):
        path.write_bytes(text)
    else:
        path.write_text(text, encoding="utf-8")
    with pytest.raises(ManifestError) as caught:
        load_manifest("thumbs.toml")
    message = str(caught.value)
    assert "\n" not in message
    return message
