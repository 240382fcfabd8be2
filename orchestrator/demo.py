"""The demo bucket: a few generated photos for the embedded emulator to process."""

from __future__ import annotations

import io
from pathlib import Path

from PIL import Image, ImageDraw

__all__ = ["seed_demo_bucket"]

_SCENES = [
    ("photos/2024/beach.jpg", (640, 480), (30, 144, 255), (255, 215, 0)),
    ("photos/2024/forest.jpg", (800, 600), (34, 139, 34), (210, 180, 140)),
    ("photos/2024/night city.jpg", (1024, 683), (25, 25, 112), (255, 140, 0)),
    ("photos/2025/mountain.png", (600, 800), (112, 128, 144), (255, 250, 250)),
    ("photos/2025/desert.jpg", (720, 480), (237, 201, 175), (178, 34, 34)),
    ("photos/2025/花园.jpg", (500, 500), (255, 182, 193), (50, 205, 50)),
    ("photos/vip/cover.jpg", (1200, 800), (75, 0, 130), (255, 255, 255)),
    ("photos/vip/poster.png", (480, 720), (220, 20, 60), (255, 255, 224)),
    ("photos/notes.txt", None, None, None),
]


def _picture(
    size: tuple[int, int], sky: tuple[int, int, int], sun: tuple[int, int, int]
) -> Image.Image:
    width, height = size
    im = Image.new("RGB", size, sky)
    draw = ImageDraw.Draw(im)
    for y in range(height // 2, height):
        shade = int(80 * (y - height // 2) / max(1, height // 2))
        draw.line([(0, y), (width, y)], fill=tuple(max(0, c - shade) for c in sky))
    r = min(size) // 6
    draw.ellipse([width // 2 - r, height // 3 - r, width // 2 + r, height // 3 + r], fill=sun)
    return im


def seed_demo_bucket(data_dir: Path, bucket: str) -> Path:
    """Create the demo photos under `data_dir/bucket` unless they are already there."""
    root = data_dir / bucket
    for key, size, sky, sun in _SCENES:
        path = root / key
        if path.exists():
            continue
        path.parent.mkdir(parents=True, exist_ok=True)
        if size is None or sky is None or sun is None:
            path.write_text("not an image: filtered out by the manifest's include globs\n")
            continue
        buf = io.BytesIO()
        fmt = "PNG" if key.endswith(".png") else "JPEG"
        _picture(size, sky, sun).save(buf, fmt, **({"quality": 90} if fmt == "JPEG" else {}))
        path.write_bytes(buf.getvalue())
    return root
