"""Every ``docs/measurements.md#anchor`` cited in bench/ or pipelines/ names a section of that file."""

from __future__ import annotations

import re
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def test_measurement_links_in_code_point_at_existing_sections():
    doc = (ROOT / "docs" / "measurements.md").read_text()
    sections = {re.sub(r"[^a-z0-9 -]", "", h.lower()).replace(" ", "-") for h in re.findall(r"^## (.+)$", doc, re.M)}
    cited = {m for p in [*ROOT.glob("bench/**/*.py"), *ROOT.glob("pipelines/**/*.py")]
             for m in re.findall(r"docs/measurements\.md#([\w-]+)", p.read_text())}
    assert cited and cited <= sections, sorted(cited - sections)
