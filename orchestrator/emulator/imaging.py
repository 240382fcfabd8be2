"""
imageMogr2 image processing for the CI emulator, on Pillow (ci-api.md §13).

A rule is at most ten styles joined by `|`; each style is
`imageMogr2/<op>/<arg>[/<op>/<arg>...]`. Styles run left to right and each one decodes
the previous one's encoded output, as CI's pipeline operator does, so a format or quality
set by one style is what the next style reads.

Inputs are JPEG, PNG, WEBP, GIF or BMP. Only the first frame of a GIF is processed; an
animated GIF comes out as a still image.

Where the reference is uncertain (ci-api.md §13 and §15 item 9), this module chooses:

* `thumbnail/<W>x<H>` fits inside W×H both ways (enlarges small images); `<Area>@` too.
* `thumbnail/!<p>p` and its one-sided forms accept p from 1 to 1000.
* No output side exceeds 10000: a larger result is scaled down keeping its ratio.
* `pad/1` applies only to the fit forms (`<W>x<H>`, `<W>x<H>>`, `<W>x<H><`) and always
  yields exactly W×H, the image centred.
* `crop` without `gravity` keeps the top-left corner (northwest).
* `rotate` by a non-right angle fills the uncovered corners with white, or with
  transparency when the image has alpha.
* JPEG or BMP output of an image with alpha is flattened onto white.
* With no quality op, JPEG and WEBP output keep the source's estimated quality, or use
  90 when the source is lossless.
* Percent-encoded segments (`%3E` for `>`) are decoded before parsing.
"""

from __future__ import annotations

import base64
import functools
import io
import math
import operator
import re
import struct
from collections.abc import Callable
from dataclasses import dataclass, field
from itertools import groupby
from operator import attrgetter
from typing import Any, Final, TypeVar
from urllib.parse import unquote

from PIL import Image, UnidentifiedImageError
from PIL.JpegImagePlugin import JpegImageFile

__all__ = [
    "MAX_SIZE",
    "MAX_STYLES",
    "SUPPORTED_FORMATS",
    "ImageDecodeError",
    "ImageInfo",
    "Operation",
    "Processed",
    "RuleError",
    "image_info",
    "parse_rule",
    "process",
]

MAX_STYLES: Final = 10
MAX_SIZE: Final = 10000
SUPPORTED_FORMATS: Final = ("BMP", "GIF", "JPEG", "PNG", "WEBP")

_STYLE_PREFIX: Final = "imageMogr2"
_MAX_PERCENT: Final = 1000
_LOSSLESS_QUALITY: Final = 100
_WEBP_QUALITY: Final = 75
_DEFAULT_LOSSY_QUALITY: Final = 90
_UNKNOWN_JPEG_QUALITY: Final = 75
_ORIENTATION_TAG: Final = 0x0112
_DEFAULT_PAD_COLOUR: Final = (0x3D, 0x3D, 0x3D)

_Size = tuple[int, int]
_Rgb = tuple[int, int, int]
_T = TypeVar("_T")


class RuleError(Exception):
    """The rule is malformed or uses something this emulator does not support."""


class ImageDecodeError(Exception):
    """The input bytes are not an image in a supported format."""


@dataclass(frozen=True, slots=True)
class ImageInfo:
    format: str
    width: int
    height: int
    quality: int
    ave: str
    orientation: int


@dataclass(frozen=True, slots=True)
class Processed:
    data: bytes
    info: ImageInfo
    size: int


@dataclass(slots=True)
class _Canvas:
    """A decoded image plus everything that decides how it is encoded again."""

    image: Image.Image
    source_format: str
    source_quality: int
    exif: Image.Exif
    icc_profile: bytes | None
    icc_space: str
    format: str
    quality: int | None = None
    progressive: bool = False
    optimize: bool = False
    strip: bool = False


_Apply = Callable[[_Canvas], None]


@dataclass(frozen=True, slots=True)
class Operation:
    """One parsed op of a rule: the style it belongs to (0-based), its name and argument."""

    style: int
    name: str
    argument: str
    apply: _Apply = field(compare=False, repr=False)


# ---------------------------------------------------------------- public entry points


def image_info(data: bytes) -> ImageInfo:
    """Format, size, estimated quality, average colour and EXIF orientation of `data`."""
    canvas = _decode(data)
    return ImageInfo(
        format=canvas.source_format,
        width=canvas.image.width,
        height=canvas.image.height,
        quality=canvas.source_quality,
        ave=_average_colour(canvas.image),
        orientation=_orientation(canvas.exif),
    )


def parse_rule(rule: str) -> list[Operation]:
    """Every op of `rule` in order, without touching any image; raises RuleError."""
    text = rule.strip()
    if not text:
        raise RuleError("empty processing rule")
    styles = text.split("|")
    if len(styles) > MAX_STYLES:
        raise RuleError(f"rule has {len(styles)} styles joined by '|'; at most {MAX_STYLES}")
    return [op for index, style in enumerate(styles) for op in _parse_style(index, style)]


def process(data: bytes, rule: str) -> Processed:
    """Apply `rule` to `data`; raises RuleError or ImageDecodeError."""
    operations = parse_rule(rule)
    for _, style in groupby(operations, key=attrgetter("style")):
        data = _run_style(data, list(style))
    return Processed(data=data, info=image_info(data), size=len(data))


def _run_style(data: bytes, operations: list[Operation]) -> bytes:
    canvas = _decode(data)
    for operation in operations:
        operation.apply(canvas)
    return _encode(canvas)


# ---------------------------------------------------------------- parsing


class _Cursor:
    """Walks the `/`-separated segments of one style."""

    def __init__(self, segments: list[str]) -> None:
        self._segments = segments
        self.position = 0

    @property
    def exhausted(self) -> bool:
        return self.position >= len(self._segments)

    def next_name(self) -> str:
        self.position += 1
        return self._segments[self.position - 1]

    def take(self, owner: str) -> str:
        if self.exhausted:
            raise RuleError(f"missing argument for {owner!r}")
        segment = self._segments[self.position]
        self.position += 1
        if not segment:
            raise RuleError(f"empty argument for {owner!r}")
        return segment

    def take_option(self, key: str) -> str | None:
        """The value of a `key/<value>` pair at the cursor, if there is one."""
        if self.exhausted or self._segments[self.position] != key:
            return None
        self.position += 1
        return self.take(key)

    def since(self, start: int) -> str:
        return "/".join(self._segments[start : self.position])


_Parser = Callable[[_Cursor], _Apply]


def _parse_style(index: int, style: str) -> list[Operation]:
    head, _, body = style.partition("/")
    if not style:
        raise RuleError(f"style {index + 1} is empty")
    if head != _STYLE_PREFIX:
        raise RuleError(f"unsupported processing style {head!r}: only imageMogr2 is supported")
    if not body:
        raise RuleError(f"style {index + 1} has no imageMogr2 operations")
    cursor = _Cursor([unquote(segment) for segment in body.split("/")])
    operations = []
    while not cursor.exhausted:
        name = cursor.next_name()
        if not name:
            raise RuleError(f"empty segment in style {index + 1} {style!r}")
        parser = _PARSERS.get(name)
        if parser is None:
            raise RuleError(f"unsupported imageMogr2 operation {name!r}")
        start = cursor.position
        apply = parser(cursor)
        operations.append(Operation(index, name, cursor.since(start), apply))
    return operations


def _number(digits: str) -> int:
    # int() refuses very long digit strings; anything that long only needs to be "huge".
    significant = digits.lstrip("0") or "0"
    return int(significant) if len(significant) <= 18 else 10**18


def _integer(text: str, low: int, high: int, what: str) -> int:
    if not re.fullmatch("[0-9]+", text) or not low <= _number(text) <= high:
        raise RuleError(f"malformed {what} {text!r}: expected an integer from {low} to {high}")
    return _number(text)


def _size(text: str, what: str) -> int:
    value = _number(text)
    if value == 0:
        raise RuleError(f"malformed {what} {text!r}: sizes must be positive")
    return min(value, MAX_SIZE)


def _choice(text: str, choices: dict[str, _T], what: str) -> _T:
    if text not in choices:
        raise RuleError(f"unsupported {what} {text!r}: expected one of {', '.join(choices)}")
    return choices[text]


def _no_argument(apply: _Apply) -> _Parser:
    def parse(cursor: _Cursor) -> _Apply:
        return apply

    return parse


def _misplaced(name: str, parent: str) -> _Parser:
    def parse(cursor: _Cursor) -> _Apply:
        raise RuleError(f"{name!r} must directly follow {parent}")

    return parse


# ---------------------------------------------------------------- thumbnail

_Sizer = Callable[[_Size], _Size]


@dataclass(frozen=True, slots=True)
class _Geometry:
    sizer: _Sizer
    box: _Size | None = None  # the W×H that `pad/1` letterboxes into


def _round(value: float) -> int:
    return max(1, math.floor(value + 0.5))


def _scaled(size: _Size, scale_x: float, scale_y: float) -> _Size:
    return _round(size[0] * scale_x), _round(size[1] * scale_y)


def _capped(size: _Size) -> _Size:
    longest = max(size)
    return size if longest <= MAX_SIZE else _scaled(size, MAX_SIZE / longest, MAX_SIZE / longest)


def _percent(text: str) -> float:
    return _integer(text, 1, _MAX_PERCENT, "thumbnail percentage") / 100


def _by_percent(scale_x: float, scale_y: float) -> _Geometry:
    return _Geometry(lambda size: _scaled(size, scale_x, scale_y))


def _to_width(width: int) -> _Geometry:
    return _Geometry(lambda size: _scaled(size, width / size[0], width / size[0]))


def _to_height(height: int) -> _Geometry:
    return _Geometry(lambda size: _scaled(size, height / size[1], height / size[1]))


def _fit(box: _Size, bound: Callable[[float], float]) -> _Geometry:
    def sizer(size: _Size) -> _Size:
        scale = bound(min(box[0] / size[0], box[1] / size[1]))
        return _scaled(size, scale, scale)

    return _Geometry(sizer, box)


def _cover(box: _Size) -> _Geometry:
    def sizer(size: _Size) -> _Size:
        scale = max(box[0] / size[0], box[1] / size[1])
        return _scaled(size, scale, scale)

    return _Geometry(sizer)


def _exact(box: _Size) -> _Geometry:
    return _Geometry(lambda size: box)


def _within_area(text: str) -> _Geometry:
    area = _number(text)
    if area == 0:
        raise RuleError(f"malformed thumbnail area {text!r}: must be positive")

    def sizer(size: _Size) -> _Size:
        scale = math.sqrt(area / (size[0] * size[1]))
        return max(1, math.floor(size[0] * scale)), max(1, math.floor(size[1] * scale))

    return _Geometry(sizer)


def _unbounded(scale: float) -> float:
    return scale


def _shrink_only(scale: float) -> float:
    return min(1.0, scale)


def _enlarge_only(scale: float) -> float:
    return max(1.0, scale)


def _box(match: re.Match[str]) -> _Size:
    return _size(match["w"], "thumbnail width"), _size(match["h"], "thumbnail height")


_N = "[0-9]+"
_THUMBNAIL_FORMS: Final[
    tuple[tuple[re.Pattern[str], Callable[[re.Match[str]], _Geometry]], ...]
] = (
    (re.compile(f"!(?P<p>{_N})p"), lambda m: _by_percent(_percent(m["p"]), _percent(m["p"]))),
    (re.compile(f"!(?P<p>{_N})px"), lambda m: _by_percent(_percent(m["p"]), 1.0)),
    (re.compile(f"!x(?P<p>{_N})p"), lambda m: _by_percent(1.0, _percent(m["p"]))),
    (re.compile(f"(?P<w>{_N})x"), lambda m: _to_width(_size(m["w"], "thumbnail width"))),
    (re.compile(f"x(?P<h>{_N})"), lambda m: _to_height(_size(m["h"], "thumbnail height"))),
    (re.compile(f"(?P<w>{_N})x(?P<h>{_N})"), lambda m: _fit(_box(m), _unbounded)),
    (re.compile(f"(?P<w>{_N})x(?P<h>{_N})>"), lambda m: _fit(_box(m), _shrink_only)),
    (re.compile(f"(?P<w>{_N})x(?P<h>{_N})<"), lambda m: _fit(_box(m), _enlarge_only)),
    (re.compile(f"!(?P<w>{_N})x(?P<h>{_N})r"), lambda m: _cover(_box(m))),
    (re.compile(f"(?P<w>{_N})x(?P<h>{_N})!"), lambda m: _exact(_box(m))),
    (re.compile(f"(?P<a>{_N})@"), lambda m: _within_area(m["a"])),
)


def _thumbnail_geometry(spec: str) -> _Geometry:
    for pattern, build in _THUMBNAIL_FORMS:
        if match := pattern.fullmatch(spec):
            return build(match)
    raise RuleError(f"malformed thumbnail argument {spec!r}")


def _pad_colour(encoded: str) -> _Rgb:
    try:
        text = base64.urlsafe_b64decode(encoded + "=" * (-len(encoded) % 4)).decode("ascii")
    except ValueError:
        text = ""
    if not re.fullmatch("#[0-9a-fA-F]{6}", text):
        raise RuleError(f"malformed pad color {encoded!r}: expected URL-safe base64 of #RRGGBB")
    red, green, blue = bytes.fromhex(text[1:])
    return red, green, blue


def _parse_pad(cursor: _Cursor, spec: str, box: _Size | None) -> tuple[_Size, _Rgb] | None:
    flag = cursor.take_option("pad")
    if flag is None:
        return None
    _integer(flag, 0, 1, "pad value")
    encoded = cursor.take_option("color")
    if flag == "0":
        return None
    if box is None:
        raise RuleError(f"pad/1 needs a <W>x<H>, <W>x<H>> or <W>x<H>< thumbnail, not {spec!r}")
    return box, _pad_colour(encoded) if encoded is not None else _DEFAULT_PAD_COLOUR


def _parse_thumbnail(cursor: _Cursor) -> _Apply:
    spec = cursor.take("thumbnail")
    geometry = _thumbnail_geometry(spec)
    pad = _parse_pad(cursor, spec, geometry.box)

    def apply(canvas: _Canvas) -> None:
        size = _capped(geometry.sizer(canvas.image.size))
        if size != canvas.image.size:
            canvas.image = canvas.image.resize(size, Image.Resampling.LANCZOS)
        if pad is not None:
            canvas.image = _letterbox(canvas.image, *pad)

    return apply


def _letterbox(image: Image.Image, box: _Size, colour: _Rgb) -> Image.Image:
    if image.mode in ("L", "LA"):
        image = image.convert("RGBA" if image.mode == "LA" else "RGB")
    fill = (*colour, 255) if image.mode == "RGBA" else colour
    framed = Image.new(image.mode, box, fill)
    framed.paste(image, ((box[0] - image.width) // 2, (box[1] - image.height) // 2))
    return framed


# ---------------------------------------------------------------- rotate and flip

# Pillow rotates counter-clockwise; CI's degrees are clockwise.
_RIGHT_ANGLES: Final = {
    90: Image.Transpose.ROTATE_270,
    180: Image.Transpose.ROTATE_180,
    270: Image.Transpose.ROTATE_90,
}
_ROTATE_FILL: Final[dict[str, float | tuple[int, ...]]] = {
    "RGB": (255, 255, 255),
    "RGBA": (255, 255, 255, 0),
    "L": 255,
    "LA": (255, 0),
}
# The same mapping as ImageOps.exif_transpose, applied to the EXIF kept on the canvas.
_ORIENTATIONS: Final = {
    2: Image.Transpose.FLIP_LEFT_RIGHT,
    3: Image.Transpose.ROTATE_180,
    4: Image.Transpose.FLIP_TOP_BOTTOM,
    5: Image.Transpose.TRANSPOSE,
    6: Image.Transpose.ROTATE_270,
    7: Image.Transpose.TRANSVERSE,
    8: Image.Transpose.ROTATE_90,
}
_FLIPS: Final = {
    "vertical": Image.Transpose.FLIP_TOP_BOTTOM,
    "horizontal": Image.Transpose.FLIP_LEFT_RIGHT,
}


def _parse_rotate(cursor: _Cursor) -> _Apply:
    degrees = _integer(cursor.take("rotate"), 0, 360, "rotate angle") % 360

    def apply(canvas: _Canvas) -> None:
        if degrees in _RIGHT_ANGLES:
            canvas.image = canvas.image.transpose(_RIGHT_ANGLES[degrees])
        elif degrees:
            canvas.image = canvas.image.rotate(
                -degrees,
                resample=Image.Resampling.BICUBIC,
                expand=True,
                fillcolor=_ROTATE_FILL.get(canvas.image.mode),
            )

    return apply


def _auto_orient(canvas: _Canvas) -> None:
    method = _ORIENTATIONS.get(_orientation(canvas.exif))
    if method is not None:
        canvas.image = canvas.image.transpose(method)
    canvas.exif.pop(_ORIENTATION_TAG, None)


def _parse_flip(cursor: _Cursor) -> _Apply:
    method = _choice(cursor.take("flip"), _FLIPS, "flip direction")

    def apply(canvas: _Canvas) -> None:
        canvas.image = canvas.image.transpose(method)

    return apply


# ---------------------------------------------------------------- format and quality

_OUTPUT_FORMATS: Final = {
    "jpg": "JPEG",
    "jpeg": "JPEG",
    "yjpeg": "JPEG",
    "png": "PNG",
    "gif": "GIF",
    "webp": "WEBP",
    "bmp": "BMP",
}
_LOSSY_FORMATS: Final = frozenset({"JPEG", "WEBP"})


def _parse_format(cursor: _Cursor) -> _Apply:
    name = cursor.take("format").lower()
    target = _choice(name, _OUTPUT_FORMATS, "output format")
    optimize = name == "yjpeg"

    def apply(canvas: _Canvas) -> None:
        canvas.format = target
        canvas.optimize = optimize

    return apply


def _parse_interlace(cursor: _Cursor) -> _Apply:
    progressive = _integer(cursor.take("interlace"), 0, 1, "interlace value") == 1

    def apply(canvas: _Canvas) -> None:
        canvas.progressive = progressive

    return apply


def _quality_from(rule: Callable[[int], int]) -> _Apply:
    def apply(canvas: _Canvas) -> None:
        canvas.quality = rule(canvas.source_quality)

    return apply


def _parse_quality(cursor: _Cursor) -> _Apply:
    text = cursor.take("quality")
    forced = text.endswith("!")
    target = _integer(text.removesuffix("!"), 0, 100, "quality")
    return _quality_from(lambda original: target if forced else min(original, target))


def _parse_relative_quality(cursor: _Cursor) -> _Apply:
    percent = _integer(cursor.take("rquality"), 0, 100, "rquality")
    return _quality_from(lambda original: (original * percent + 50) // 100)


def _parse_lowest_quality(cursor: _Cursor) -> _Apply:
    floor = _integer(cursor.take("lquality"), 0, 100, "lquality")
    return _quality_from(lambda original: max(original, floor))


# ---------------------------------------------------------------- cut and crop

_CUT: Final = re.compile(f"({_N})x({_N})x({_N})x({_N})")
_CROP: Final = re.compile(f"({_N})?x({_N})?")
# Horizontal and vertical position of the kept region, in halves of the slack.
_GRAVITIES: Final = {
    "northwest": (0, 0),
    "north": (1, 0),
    "northeast": (2, 0),
    "west": (0, 1),
    "center": (1, 1),
    "east": (2, 1),
    "southwest": (0, 2),
    "south": (1, 2),
    "southeast": (2, 2),
}
# The reference does not say which gravity crop uses by default; top-left is chosen.
_DEFAULT_GRAVITY: Final = "northwest"


def _parse_cut(cursor: _Cursor) -> _Apply:
    spec = cursor.take("cut")
    match = _CUT.fullmatch(spec)
    if match is None:
        raise RuleError(f"malformed cut argument {spec!r}: expected <w>x<h>x<dx>x<dy>")
    width, height = _size(match[1], "cut width"), _size(match[2], "cut height")
    left, top = _number(match[3]), _number(match[4])

    def apply(canvas: _Canvas) -> None:
        image_width, image_height = canvas.image.size
        if left >= image_width or top >= image_height:
            raise RuleError(
                f"cut region {spec!r} lies outside the {image_width}x{image_height} image"
            )
        right, bottom = min(left + width, image_width), min(top + height, image_height)
        canvas.image = canvas.image.crop((left, top, right, bottom))

    return apply


def _parse_crop(cursor: _Cursor) -> _Apply:
    spec = cursor.take("crop")
    match = _CROP.fullmatch(spec)
    if match is None or not (match[1] or match[2]):
        raise RuleError(f"malformed crop argument {spec!r}: expected <W>x, x<H> or <W>x<H>")
    width = _size(match[1], "crop width") if match[1] else None
    height = _size(match[2], "crop height") if match[2] else None
    gravity = cursor.take_option("gravity") or _DEFAULT_GRAVITY
    along_x, along_y = _choice(gravity, _GRAVITIES, "gravity")

    def apply(canvas: _Canvas) -> None:
        image_width, image_height = canvas.image.size
        kept_width = min(width or image_width, image_width)
        kept_height = min(height or image_height, image_height)
        left = (image_width - kept_width) * along_x // 2
        top = (image_height - kept_height) * along_y // 2
        canvas.image = canvas.image.crop((left, top, left + kept_width, top + kept_height))

    return apply


# ---------------------------------------------------------------- strip, ignore-error


def _strip(canvas: _Canvas) -> None:
    canvas.strip = True


def _ignore(canvas: _Canvas) -> None:
    """Nothing to do: the emulator has no oversize-input failure to suppress."""


def _parse_ignore_error(cursor: _Cursor) -> _Apply:
    _integer(cursor.take("ignore-error"), 0, 1, "ignore-error value")
    return _ignore


_PARSERS: Final[dict[str, _Parser]] = {
    "thumbnail": _parse_thumbnail,
    "rotate": _parse_rotate,
    "auto-orient": _no_argument(_auto_orient),
    "flip": _parse_flip,
    "format": _parse_format,
    "interlace": _parse_interlace,
    "quality": _parse_quality,
    "rquality": _parse_relative_quality,
    "lquality": _parse_lowest_quality,
    "cut": _parse_cut,
    "crop": _parse_crop,
    "strip": _no_argument(_strip),
    "ignore-error": _parse_ignore_error,
    "gravity": _misplaced("gravity", "crop/<W>x<H>"),
    "pad": _misplaced("pad", "thumbnail/<W>x<H>"),
    "color": _misplaced("color", "thumbnail/<W>x<H>/pad/1"),
}


# ---------------------------------------------------------------- decoding

# Pillow reports malformed input through many exception types, depending on the plugin.
_DECODE_FAILURES: Final = (
    OSError,
    SyntaxError,
    ValueError,
    EOFError,
    IndexError,
    KeyError,
    TypeError,
    struct.error,
    Image.DecompressionBombError,
)
_ALPHA_MODES: Final = frozenset({"RGBA", "LA", "PA"})

# IJG base quantisation tables (libjpeg jcparam.c); their order does not matter here.
_LUMINANCE: Final = (
    *(16, 11, 10, 16, 24, 40, 51, 61, 12, 12, 14, 19, 26, 58, 60, 55),
    *(14, 13, 16, 24, 40, 57, 69, 56, 14, 17, 22, 29, 51, 87, 80, 62),
    *(18, 22, 37, 56, 68, 109, 103, 77, 24, 35, 55, 64, 81, 104, 113, 92),
    *(49, 64, 78, 87, 103, 121, 120, 101, 72, 92, 95, 98, 112, 100, 103, 99),
)
_CHROMINANCE: Final = (
    *(17, 18, 24, 47, 99, 99, 99, 99, 18, 21, 26, 66, 99, 99, 99, 99),
    *(24, 26, 56, 99, 99, 99, 99, 99, 47, 66, 99, 99, 99, 99, 99, 99),
    *((99,) * 32),
)


def _decode(data: bytes) -> _Canvas:
    try:
        return _read(data)
    except UnidentifiedImageError as exc:
        formats = ", ".join(SUPPORTED_FORMATS)
        raise ImageDecodeError(f"not a supported image (expected {formats})") from exc
    except _DECODE_FAILURES as exc:
        raise ImageDecodeError(f"cannot decode image: {exc}") from exc


def _read(data: bytes) -> _Canvas:
    opened = Image.open(io.BytesIO(data), formats=SUPPORTED_FORMATS)
    opened.load()  # a GIF's first frame only
    source_format = opened.format or ""
    exif = opened.getexif()
    image = _working_copy(opened)
    icc_profile = opened.info.get("icc_profile") if opened.mode != "CMYK" else None
    return _Canvas(
        image=image,
        source_format=source_format,
        source_quality=_estimated_quality(opened),
        exif=exif,
        icc_profile=icc_profile if isinstance(icc_profile, bytes) else None,
        icc_space=_colour_space(image.mode),
        format=source_format,
    )


def _working_copy(opened: Image.Image) -> Image.Image:
    """A detached RGB(A) or L(A) copy with no file metadata left in `info`."""
    has_alpha = opened.mode in _ALPHA_MODES or "transparency" in opened.info
    if opened.mode in ("RGBA", "LA") or (opened.mode in ("RGB", "L") and not has_alpha):
        image = opened.copy()
    elif opened.mode == "1":
        image = opened.convert("L")
    else:
        image = opened.convert("RGBA" if has_alpha else "RGB")
    # EXIF and ICC travel on the canvas so that strip can drop them in one place.
    image.info = {}
    return image


def _colour_space(mode: str) -> str:
    return mode.removesuffix("A")


def _estimated_quality(opened: Image.Image) -> int:
    if isinstance(opened, JpegImageFile):
        return _jpeg_quality(opened.quantization)
    return _WEBP_QUALITY if opened.format == "WEBP" else _LOSSLESS_QUALITY


def _jpeg_quality(tables: dict[int, list[int]]) -> int:
    """The IJG quality whose scaled tables are nearest to `tables` (100 wins ties)."""
    return _nearest_quality(
        tuple((tuple(sorted(tables[index])), base) for index, base in _base_tables(tables))
    )


# Every JPEG an encoder writes at one quality has the same tables, so a few entries serve all.
@functools.lru_cache(maxsize=256)
def _nearest_quality(observed: tuple[tuple[tuple[int, ...], tuple[int, ...]], ...]) -> int:
    if not observed:
        return _UNKNOWN_JPEG_QUALITY
    ceiling = 255 if max(max(table) for table, _ in observed) <= 255 else 32767

    def distance(quality: int) -> int:
        return sum(
            abs(seen - expected)
            for table, base in observed
            for seen, expected in zip(table, _ijg_table(base, quality, ceiling), strict=False)
        )

    return min(range(100, 0, -1), key=distance)


def _base_tables(tables: dict[int, list[int]]) -> list[tuple[int, tuple[int, ...]]]:
    return [
        (index, base) for index, base in enumerate((_LUMINANCE, _CHROMINANCE)) if index in tables
    ]


@functools.lru_cache(maxsize=512)
def _ijg_table(base: tuple[int, ...], quality: int, ceiling: int) -> tuple[int, ...]:
    scale = 5000 // quality if quality < 50 else 200 - 2 * quality
    return tuple(sorted(min(ceiling, max(1, (value * scale + 50) // 100)) for value in base))


def _average_colour(image: Image.Image) -> str:
    # ImageStat's mean, from the histogram in C rather than its per-bin Python loop: the sums
    # are whole numbers, so the quotients (and their rounding) are the same.
    histogram = image.convert("RGB").histogram()
    red, green, blue = (
        round(_histogram_mean(histogram[start : start + 256])) for start in (0, 256, 512)
    )
    return f"0x{red:02x}{green:02x}{blue:02x}"


def _histogram_mean(band: list[int]) -> float:
    count = sum(band)
    return sum(map(operator.mul, range(256), band)) / count if count else 0.0


def _orientation(exif: Image.Exif) -> int:
    value = exif.get(_ORIENTATION_TAG, 0)
    return value if isinstance(value, int) and 0 <= value <= 8 else 0


# ---------------------------------------------------------------- encoding

_ALPHA_FORMATS: Final = frozenset({"PNG", "WEBP", "GIF"})
_METADATA_FORMATS: Final = frozenset({"JPEG", "PNG", "WEBP"})


def _encode(canvas: _Canvas) -> bytes:
    image = canvas.image
    if image.mode in _ALPHA_MODES and canvas.format not in _ALPHA_FORMATS:
        image = _flatten(image)
    options: dict[str, Any] = {}
    if canvas.format in _LOSSY_FORMATS:
        options["quality"] = _output_quality(canvas)
    if canvas.format == "JPEG":
        options.update(progressive=canvas.progressive, optimize=canvas.optimize)
    if canvas.format in _METADATA_FORMATS and not canvas.strip:
        options.update(_metadata(canvas, image.mode))
    buffer = io.BytesIO()
    image.save(buffer, format=canvas.format, **options)
    return buffer.getvalue()


def _flatten(image: Image.Image) -> Image.Image:
    background = Image.new("RGBA", image.size, (255, 255, 255, 255))
    return Image.alpha_composite(background, image.convert("RGBA")).convert("RGB")


def _output_quality(canvas: _Canvas) -> int:
    if canvas.quality is not None:
        return canvas.quality
    if canvas.source_format in _LOSSY_FORMATS:
        return canvas.source_quality
    return _DEFAULT_LOSSY_QUALITY


def _metadata(canvas: _Canvas, mode: str) -> dict[str, Any]:
    options: dict[str, Any] = {}
    if len(canvas.exif):
        options["exif"] = canvas.exif.tobytes()
    # A profile for another colour space (grey after letterboxing into RGB) would be wrong.
    if canvas.icc_profile and _colour_space(mode) == canvas.icc_space:
        options["icc_profile"] = canvas.icc_profile
    return options
