"""imageMogr2 processing of the emulator (ci-api.md §13) on images made in memory."""

from __future__ import annotations

import base64
import io
from typing import Any

import pytest
from PIL import Image

from orchestrator.emulator.imaging import (
    ImageDecodeError,
    ImageInfo,
    RuleError,
    image_info,
    parse_rule,
    process,
)

RED = (255, 0, 0)
GREEN = (0, 255, 0)
BLUE = (0, 0, 255)
YELLOW = (255, 255, 0)
ORIENTATION = 0x0112
MAKE = 0x010F


def encode(image: Image.Image, fmt: str = "PNG", **options: Any) -> bytes:
    buffer = io.BytesIO()
    image.save(buffer, format=fmt, **options)
    return buffer.getvalue()


def decode(data: bytes) -> Image.Image:
    image = Image.open(io.BytesIO(data))
    image.load()
    return image


def quadrants(width: int = 400, height: int = 300) -> Image.Image:
    """Red top-left, green top-right, blue bottom-left, yellow bottom-right."""
    image = Image.new("RGB", (width, height))
    half_w, half_h = width // 2, height // 2
    image.paste(RED, (0, 0, half_w, half_h))
    image.paste(GREEN, (half_w, 0, width, half_h))
    image.paste(BLUE, (0, half_h, half_w, height))
    image.paste(YELLOW, (half_w, half_h, width, height))
    return image


def rgb_at(data: bytes, x: int, y: int) -> tuple[int, ...]:
    pixel = decode(data).convert("RGB").getpixel((x, y))
    assert isinstance(pixel, tuple)
    return pixel


def near(actual: tuple[int, ...], expected: tuple[int, ...], tolerance: int = 40) -> bool:
    return all(abs(a - e) <= tolerance for a, e in zip(actual, expected, strict=True))


def jpeg_with_exif(orientation: int) -> bytes:
    exif = Image.Exif()
    exif[ORIENTATION] = orientation
    exif[MAKE] = "EmulatorCam"
    return encode(quadrants(), "JPEG", quality=95, exif=exif.tobytes())


PNG_400x300 = encode(quadrants())
JPEG_Q90 = encode(quadrants(), "JPEG", quality=90)


# ---------------------------------------------------------------- thumbnail


@pytest.mark.parametrize(
    ("argument", "expected"),
    [
        ("!50p", (200, 150)),
        ("!150p", (600, 450)),
        ("!50px", (200, 300)),
        ("!x50p", (400, 150)),
        ("200x", (200, 150)),
        ("x150", (200, 150)),
        ("200x200", (200, 150)),
        ("800x800", (800, 600)),
        ("200x200>", (200, 150)),
        ("800x800>", (400, 300)),
        ("800x800<", (800, 600)),
        ("200x200<", (400, 300)),
        ("!200x200r", (267, 200)),
        ("200x100!", (200, 100)),
        ("30000@", (200, 150)),
        ("200x200%3E", (200, 150)),
    ],
)
def test_thumbnail_variant_on_a_400x300_image_gives_the_documented_size(
    argument: str, expected: tuple[int, int]
) -> None:
    result = process(PNG_400x300, f"imageMogr2/thumbnail/{argument}")
    assert (result.info.width, result.info.height) == expected
    assert decode(result.data).size == expected


def test_thumbnail_pad_letterboxes_into_the_box_with_the_default_grey() -> None:
    result = process(PNG_400x300, "imageMogr2/thumbnail/200x200/pad/1")
    assert (result.info.width, result.info.height) == (200, 200)
    assert rgb_at(result.data, 100, 5) == (0x3D, 0x3D, 0x3D)
    assert rgb_at(result.data, 50, 50) == RED


def test_thumbnail_pad_fills_with_the_base64_color() -> None:
    colour = base64.urlsafe_b64encode(b"#00FF00").decode().rstrip("=")
    result = process(PNG_400x300, f"imageMogr2/thumbnail/200x200/pad/1/color/{colour}")
    assert rgb_at(result.data, 100, 195) == GREEN


def test_size_parameters_above_10000_are_clamped_to_10000() -> None:
    strip = encode(Image.new("RGB", (100, 1), RED))
    result = process(strip, "imageMogr2/thumbnail/20000x")
    assert (result.info.width, result.info.height) == (10000, 100)


def test_absurdly_long_size_parameters_are_clamped_too() -> None:
    strip = encode(Image.new("RGB", (100, 1), RED))
    result = process(strip, "imageMogr2/thumbnail/" + "9" * 5000 + "x")
    assert result.info.width == 10000


def test_no_output_side_exceeds_10000() -> None:
    wide = encode(Image.new("RGB", (2000, 10), RED))
    result = process(wide, "imageMogr2/thumbnail/!1000p")
    assert (result.info.width, result.info.height) == (10000, 50)


# ---------------------------------------------------------------- rotate and flip


def test_rotate_90_swaps_width_and_height() -> None:
    result = process(PNG_400x300, "imageMogr2/rotate/90")
    assert (result.info.width, result.info.height) == (300, 400)


def test_rotate_90_turns_the_image_clockwise() -> None:
    result = process(PNG_400x300, "imageMogr2/rotate/90")
    assert rgb_at(result.data, 290, 10) == RED
    assert rgb_at(result.data, 10, 10) == BLUE


def test_rotate_45_expands_the_canvas_and_fills_the_corners_white() -> None:
    result = process(PNG_400x300, "imageMogr2/rotate/45")
    # (400 + 300) / sqrt(2) ≈ 495, give or take Pillow's rounding of the bounding box
    assert result.info.width == result.info.height
    assert 495 <= result.info.width <= 497
    assert rgb_at(result.data, 2, 2) == (255, 255, 255)


@pytest.mark.parametrize(
    ("direction", "top_left", "bottom_right"),
    [("horizontal", GREEN, BLUE), ("vertical", BLUE, GREEN)],
)
def test_flip_mirrors_the_pixels(
    direction: str, top_left: tuple[int, int, int], bottom_right: tuple[int, int, int]
) -> None:
    result = process(PNG_400x300, f"imageMogr2/flip/{direction}")
    assert rgb_at(result.data, 10, 10) == top_left
    assert rgb_at(result.data, 390, 290) == bottom_right


# ---------------------------------------------------------------- format and quality


def test_format_webp_produces_webp_bytes() -> None:
    result = process(PNG_400x300, "imageMogr2/format/webp")
    assert result.data[:4] == b"RIFF"
    assert result.data[8:12] == b"WEBP"
    assert result.info.format == "WEBP"


def test_format_png_produces_png_bytes() -> None:
    result = process(JPEG_Q90, "imageMogr2/format/png")
    assert result.data.startswith(b"\x89PNG\r\n\x1a\n")
    assert result.info.format == "PNG"
    assert result.info.quality == 100


@pytest.mark.parametrize("fmt", ["JPEG", "PNG", "GIF", "BMP", "WEBP"])
def test_output_format_defaults_to_the_input_format(fmt: str) -> None:
    result = process(encode(quadrants(), fmt), "imageMogr2/rotate/90")
    assert result.info.format == fmt
    assert decode(result.data).format == fmt


@pytest.mark.parametrize("name", ["jpg", "jpeg", "yjpeg"])
def test_jpeg_names_all_produce_jpeg(name: str) -> None:
    result = process(PNG_400x300, f"imageMogr2/format/{name}")
    assert result.data.startswith(b"\xff\xd8")


def test_jpeg_output_of_a_transparent_image_is_flattened_onto_white() -> None:
    transparent = encode(Image.new("RGBA", (40, 30), (255, 0, 0, 0)))
    result = process(transparent, "imageMogr2/format/jpg")
    assert decode(result.data).mode == "RGB"
    assert near(rgb_at(result.data, 20, 15), (255, 255, 255), tolerance=2)


def test_jpeg_output_of_a_palette_image_is_rgb() -> None:
    palette = encode(quadrants().convert("P"), "GIF")
    result = process(palette, "imageMogr2/format/jpg")
    assert decode(result.data).mode == "RGB"


@pytest.mark.parametrize(
    ("argument", "expected"),
    [
        ("quality/50", 50),
        ("quality/95", 90),
        ("quality/95!", 95),
        ("rquality/50", 45),
        ("lquality/95", 95),
        ("lquality/50", 90),
    ],
)
def test_quality_op_on_a_quality_90_jpeg_gives_the_documented_quality(
    argument: str, expected: int
) -> None:
    assert image_info(JPEG_Q90).quality == 90
    assert process(JPEG_Q90, f"imageMogr2/{argument}").info.quality == expected


def test_quality_50_lowers_the_estimated_quality_and_the_size() -> None:
    result = process(JPEG_Q90, "imageMogr2/quality/50")
    assert result.info.quality < image_info(JPEG_Q90).quality
    assert result.size < len(process(JPEG_Q90, "imageMogr2/quality/90").data)


def test_interlace_1_writes_a_progressive_jpeg() -> None:
    progressive = process(JPEG_Q90, "imageMogr2/interlace/1")
    baseline = process(JPEG_Q90, "imageMogr2/interlace/0")
    assert decode(progressive.data).info.get("progressive") == 1
    assert "progressive" not in decode(baseline.data).info


# ---------------------------------------------------------------- cut and crop


def test_cut_takes_the_rectangle_at_the_offset() -> None:
    result = process(PNG_400x300, "imageMogr2/cut/100x50x250x200")
    assert (result.info.width, result.info.height) == (100, 50)
    assert result.info.ave == "0xffff00"


def test_cut_reaching_past_the_edge_is_trimmed_to_the_image() -> None:
    result = process(PNG_400x300, "imageMogr2/cut/300x300x300x0")
    assert (result.info.width, result.info.height) == (100, 300)


def test_cut_starting_outside_the_image_is_rejected() -> None:
    with pytest.raises(RuleError, match="outside"):
        process(PNG_400x300, "imageMogr2/cut/10x10x500x0")


@pytest.mark.parametrize(
    ("gravity", "left", "top"),
    [
        ("northwest", 0, 0),
        ("north", 150, 0),
        ("northeast", 300, 0),
        ("west", 0, 100),
        ("center", 150, 100),
        ("east", 300, 100),
        ("southwest", 0, 200),
        ("south", 150, 200),
        ("southeast", 300, 200),
    ],
)
def test_crop_with_gravity_keeps_the_matching_region(gravity: str, left: int, top: int) -> None:
    result = process(PNG_400x300, f"imageMogr2/crop/100x100/gravity/{gravity}")
    assert (result.info.width, result.info.height) == (100, 100)
    for x, y in [(0, 0), (99, 0), (0, 99), (99, 99), (50, 50)]:
        assert rgb_at(result.data, x, y) == rgb_at(PNG_400x300, left + x, top + y)


def test_crop_with_center_gravity_straddles_all_four_quadrants() -> None:
    result = process(PNG_400x300, "imageMogr2/crop/100x100/gravity/center")
    assert rgb_at(result.data, 0, 0) == RED
    assert rgb_at(result.data, 99, 0) == GREEN
    assert rgb_at(result.data, 0, 99) == BLUE
    assert rgb_at(result.data, 99, 99) == YELLOW


def test_crop_without_gravity_keeps_the_top_left_corner() -> None:
    result = process(PNG_400x300, "imageMogr2/crop/100x100")
    assert result.info.ave == "0xff0000"


@pytest.mark.parametrize(
    ("argument", "expected"),
    [("200x", (200, 300)), ("x100", (400, 100)), ("1000x100", (400, 100))],
)
def test_crop_with_one_side_or_an_oversized_side_keeps_the_rest(
    argument: str, expected: tuple[int, int]
) -> None:
    result = process(PNG_400x300, f"imageMogr2/crop/{argument}")
    assert (result.info.width, result.info.height) == expected


# ---------------------------------------------------------------- metadata


def test_exif_is_kept_without_strip() -> None:
    result = process(jpeg_with_exif(6), "imageMogr2/thumbnail/!50p")
    assert decode(result.data).getexif().get(MAKE) == "EmulatorCam"
    assert result.info.orientation == 6


def test_strip_removes_exif() -> None:
    result = process(jpeg_with_exif(6), "imageMogr2/strip")
    assert len(decode(result.data).getexif()) == 0
    assert "exif" not in decode(result.data).info
    assert result.info.orientation == 0


def test_auto_orient_applies_exif_orientation_6() -> None:
    source = jpeg_with_exif(6)
    assert image_info(source).orientation == 6
    result = process(source, "imageMogr2/auto-orient")
    assert (result.info.width, result.info.height) == (300, 400)
    assert result.info.orientation == 0
    assert near(rgb_at(result.data, 290, 10), RED)
    assert decode(result.data).getexif().get(MAKE) == "EmulatorCam"


# ---------------------------------------------------------------- pipelines and rules


def test_pipeline_runs_styles_left_to_right() -> None:
    result = process(PNG_400x300, "imageMogr2/thumbnail/200x|imageMogr2/rotate/90")
    assert (result.info.width, result.info.height) == (150, 200)


def test_several_ops_in_one_style_are_chained() -> None:
    result = process(PNG_400x300, "imageMogr2/crop/200x150/rotate/90/format/webp")
    assert (result.info.width, result.info.height, result.info.format) == (150, 200, "WEBP")


def test_format_chosen_by_one_style_carries_into_the_next() -> None:
    result = process(PNG_400x300, "imageMogr2/format/jpg|imageMogr2/rotate/90")
    assert result.info.format == "JPEG"


def test_ten_styles_are_accepted() -> None:
    result = process(PNG_400x300, "|".join(["imageMogr2/flip/horizontal"] * 10))
    assert rgb_at(result.data, 10, 10) == RED


def test_eleven_styles_are_rejected() -> None:
    with pytest.raises(RuleError, match="11 styles"):
        parse_rule("|".join(["imageMogr2/strip"] * 11))


@pytest.mark.parametrize(
    ("rule", "named"),
    [
        ("imageMogr2/blur/3", "unsupported imageMogr2 operation 'blur'"),
        ("watermark/1/image/aHR0cDovL2V4YW1wbGUuY29t", "'watermark'"),
        ("imageMogr2/thumbnail/abc", "'abc'"),
        ("imageMogr2/thumbnail/0x100", "'0'"),
        ("imageMogr2/thumbnail/!2000p", "'2000'"),
        ("imageMogr2/thumbnail/200x200!/pad/1", "'200x200!'"),
        ("imageMogr2/thumbnail/200x200/pad/1/color/bm90LWEtY29sb3I", "'bm90LWEtY29sb3I'"),
        ("imageMogr2/rotate", "'rotate'"),
        ("imageMogr2/rotate/361", "'361'"),
        ("imageMogr2/rotate/-90", "'-90'"),
        ("imageMogr2/flip/diagonal", "'diagonal'"),
        ("imageMogr2/format/tiff", "'tiff'"),
        ("imageMogr2/interlace/2", "'2'"),
        ("imageMogr2/quality/101", "'101'"),
        ("imageMogr2/rquality/80!", "'80!'"),
        ("imageMogr2/cut/10x10x5", "'10x10x5'"),
        ("imageMogr2/crop/x", "'x'"),
        ("imageMogr2/crop/100x100/gravity/middle", "'middle'"),
        ("imageMogr2/gravity/center/crop/100x100", "'gravity'"),
        ("imageMogr2/ignore-error/yes", "'yes'"),
        ("imageMogr2/size-limit/15k!", "'size-limit'"),
        ("imageMogr2/strip|imageView2/1/w/100", "'imageView2'"),
        ("imageMogr2", "no imageMogr2 operations"),
        ("imageMogr2/strip||imageMogr2/strip", "style 2 is empty"),
        ("imageMogr2/strip/", "empty segment"),
        ("imageMogr2/rotate/" + "9" * 5000, "rotate angle"),
        ("", "empty"),
    ],
)
def test_unsupported_or_malformed_rule_is_rejected_naming_the_bad_part(
    rule: str, named: str
) -> None:
    with pytest.raises(RuleError) as caught:
        parse_rule(rule)
    assert named in str(caught.value)
    assert "\n" not in str(caught.value)


def test_rule_is_checked_before_the_image_is_decoded() -> None:
    with pytest.raises(RuleError, match="'blur'"):
        process(b"not an image", "imageMogr2/blur/3")


def test_parse_rule_lists_each_operation_with_its_style_and_argument() -> None:
    operations = parse_rule(
        "imageMogr2/thumbnail/200x200/pad/1/strip|imageMogr2/crop/10x/gravity/east"
    )
    assert [(op.style, op.name, op.argument) for op in operations] == [
        (0, "thumbnail", "200x200/pad/1"),
        (0, "strip", ""),
        (1, "crop", "10x/gravity/east"),
    ]


def test_ignore_error_is_accepted_and_changes_nothing() -> None:
    result = process(PNG_400x300, "imageMogr2/ignore-error/1/thumbnail/200x")
    assert (result.info.width, result.info.height) == (200, 150)


def test_processing_is_deterministic() -> None:
    rule = "imageMogr2/rotate/33/thumbnail/!70p|imageMogr2/format/webp/quality/60"
    assert process(JPEG_Q90, rule).data == process(JPEG_Q90, rule).data


def test_processed_size_is_the_length_of_the_output() -> None:
    result = process(JPEG_Q90, "imageMogr2/thumbnail/100x")
    assert result.size == len(result.data)


# ---------------------------------------------------------------- decoding and image_info


@pytest.mark.parametrize(
    "data",
    [
        b"",
        b"definitely not an image",
        PNG_400x300[:200],
        JPEG_Q90[:300],
        encode(quadrants(), "TIFF"),
    ],
    ids=["empty", "text", "truncated-png", "truncated-jpeg", "tiff"],
)
def test_corrupt_or_unsupported_bytes_raise_image_decode_error(data: bytes) -> None:
    with pytest.raises(ImageDecodeError):
        image_info(data)
    with pytest.raises(ImageDecodeError):
        process(data, "imageMogr2/strip")


def test_image_info_of_a_solid_red_png() -> None:
    info = image_info(encode(Image.new("RGB", (40, 30), RED)))
    assert info == ImageInfo(
        format="PNG", width=40, height=30, quality=100, ave="0xff0000", orientation=0
    )


@pytest.mark.parametrize("quality", [10, 30, 50, 68, 75, 90, 95, 100])
def test_image_info_estimates_the_quality_a_jpeg_was_saved_with(quality: int) -> None:
    info = image_info(encode(quadrants(), "JPEG", quality=quality))
    assert (info.format, info.quality) == ("JPEG", quality)


def test_image_info_reports_webp_quality_as_75() -> None:
    assert image_info(encode(quadrants(), "WEBP")).quality == 75


def test_image_info_averages_colours_across_the_image() -> None:
    half = Image.new("RGB", (2, 1), RED)
    half.putpixel((1, 0), BLUE)
    assert image_info(encode(half)).ave == "0x800080"


def test_gif_input_is_processed_first_frame_only() -> None:
    frames = [Image.new("RGB", (40, 30), colour) for colour in (RED, BLUE)]
    animated = encode(frames[0], "GIF", save_all=True, append_images=frames[1:])
    assert getattr(decode(animated), "n_frames", 1) == 2
    result = process(animated, "imageMogr2/thumbnail/20x")
    assert getattr(decode(result.data), "n_frames", 1) == 1
    assert (result.info.format, result.info.ave) == ("GIF", "0xff0000")
