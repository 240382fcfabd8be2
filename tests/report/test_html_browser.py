"""The HTML report of a real run, opened in headless Chromium: it draws, and shows the counts.

Needs a browser binary (Debian's `chromium`; `.ci/install-browser` installs it); skipped,
saying so, only when there is none.
"""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

import pytest
from PIL import Image, ImageStat

from .conftest import RenderedRun
from .page_parts import Page, headline

_NAMES = ("chromium", "chromium-browser", "google-chrome", "google-chrome-stable")
BROWSER = next((found for name in _NAMES if (found := shutil.which(name))), None)
WIDTH, HEIGHT = 1280, 1600
SUCCESS_GREEN = (0x2E, 0x7D, 0x32)

pytestmark = pytest.mark.skipif(
    BROWSER is None,
    reason="no headless browser: none of chromium, chromium-browser, google-chrome is on PATH "
    "(.ci/install-browser installs Debian's chromium)",
)


def _chromium(profile: Path, *args: str) -> subprocess.CompletedProcess[str]:
    assert BROWSER is not None
    command = [
        BROWSER,
        "--headless",
        "--no-sandbox",  # CI containers run as root, where the sandbox cannot start
        "--disable-gpu",
        "--disable-dev-shm-usage",
        "--disable-background-networking",  # tests talk to loopback only
        "--disable-component-update",
        "--no-first-run",
        "--hide-scrollbars",
        f"--user-data-dir={profile}",
        *args,
    ]
    return subprocess.run(command, capture_output=True, text=True, timeout=180, check=False)


def _near(pixel: tuple[int, ...], colour: tuple[int, int, int], tolerance: int = 24) -> bool:
    return all(abs(a - b) <= tolerance for a, b in zip(pixel[:3], colour, strict=True))


def test_chromium_draws_the_report_and_its_dom_holds_the_headline_counts(
    rendered: RenderedRun, tmp_path: Path
) -> None:
    url = rendered.page.resolve().as_uri()
    shot = tmp_path / "report.png"

    drawn = _chromium(
        tmp_path / "profile-shot", f"--screenshot={shot}", f"--window-size={WIDTH},{HEIGHT}", url
    )
    dumped = _chromium(tmp_path / "profile-dom", "--dump-dom", url)

    assert shot.exists(), drawn.stderr[-2000:]
    with Image.open(shot) as image:
        assert image.size == (WIDTH, HEIGHT)
        rgb = image.convert("RGB")
        assert max(ImageStat.Stat(rgb).stddev) > 10  # not one flat colour
        colours = rgb.getcolors(maxcolors=WIDTH * HEIGHT)
        assert colours is not None and len(colours) > 50
        green = sum(n for n, pixel in colours if _near(pixel, SUCCESS_GREEN))
        assert green > 2000  # the success bars of the charts were drawn
    assert dumped.returncode == 0, dumped.stderr[-2000:]
    dom = Page(dumped.stdout)
    counts = rendered.counts
    assert headline(dom) == {
        "total": sum(counts.values()),
        "success": counts["success"],
        "failed": counts["failed"],
        "cancelled": counts["cancelled"],
        "in-flight": counts["submitting"] + counts["unknown"] + counts["submitted"],
        "pending": counts["pending"],
    }
    assert dom.by_id["exit-code"] == "1"
    assert dom.tags.count("svg") == 5
