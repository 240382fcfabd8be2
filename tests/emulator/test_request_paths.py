"""Request fields are found in one walk of the body, where a search per field found them."""

from __future__ import annotations

from datetime import datetime

import pytest

from orchestrator.emulator import wire
from orchestrator.emulator.model import CI_TIMEZONE, ci_time

BODY = b"""<Request>
  <!-- a comment --><?pi here?>
  <Tag>PicProcess</Tag>
  <Operation><UserData/></Operation>
  <Operation>
    <Output><Region>first</Region><Region>second</Region></Output>
    <PicProcess><ProcessRule>  imageMogr2/rotate/90 </ProcessRule></PicProcess>
    <JobLevel>1</JobLevel>
  </Operation>
  <Operation><Output><Bucket>late-1250000000</Bucket><Region>third</Region></Output></Operation>
  <Deep><A><B><C>four levels</C></B></A></Deep>
</Request>"""
PATHS = [
    "Tag",
    "Operation",
    "Operation/UserData",
    "Operation/Output",
    "Operation/Output/Region",
    "Operation/Output/Bucket",
    "Operation/Output/Object",
    "Operation/PicProcess/ProcessRule",
    "Operation/JobLevel",
    "Deep/A/B",
    "Missing",
]


@pytest.mark.parametrize("path", PATHS)
def test_the_first_element_on_a_path_is_the_one_find_finds(path: str) -> None:
    root = wire.parse_body(BODY)

    assert wire._elements(root).get(path) is root.find(path)


def test_nothing_deeper_than_three_levels_is_indexed() -> None:
    assert "Deep/A/B/C" not in wire._elements(wire.parse_body(BODY))


@pytest.mark.parametrize("moment", [0.0, 1_700_000_000.0, 1_700_000_000.999, 1_700_003_599.5])
def test_ci_time_shows_the_whole_second(moment: float) -> None:
    expected = datetime.fromtimestamp(moment, CI_TIMEZONE).strftime("%Y-%m-%dT%H:%M:%S%z")
    assert ci_time(moment) == expected
