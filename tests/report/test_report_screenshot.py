"""The page renders in headless Chromium: a screenshot of the expected size that is not blank."""

from __future__ import annotations

import os
import shutil
import subprocess
import tempfile
from pathlib import Path

import numpy as np
import pytest
from png_helpers import read_png
from report_helpers import make_tree

from redpajama.report import ReportConfig, build_report

CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")
WIDTH, HEIGHT = 1280, 2000

pytestmark = pytest.mark.skipif(
    CHROMIUM is None,
    reason="chromium is not installed (Debian: apt-get install -y chromium; .ci/run does it)",
)


def screenshot(html: Path, png: Path) -> None:
    with tempfile.TemporaryDirectory() as profile:
        # Flags from the environment notes: no sandbox (root in a container), nothing that phones home.
        subprocess.run(
            [
                CHROMIUM,
                "--headless",
                "--no-sandbox",
                "--disable-gpu",
                "--disable-quic",
                "--no-first-run",
                "--disable-background-networking",
                "--disable-component-update",
                "--disable-sync",
                f"--user-data-dir={profile}",
                f"--screenshot={png}",
                f"--window-size={WIDTH},{HEIGHT}",
                html.resolve().as_uri(),
            ],  # fmt: skip
            check=True,
            capture_output=True,
            timeout=120,
            env={**os.environ, "HOME": profile},
        )


def test_report_renders_in_chromium(tmp_path: Path) -> None:
    out = make_tree(tmp_path / "out")
    page = build_report(out, tmp_path / "report", ReportConfig(rules=("rpv1",)))
    png = tmp_path / "shot.png"
    screenshot(page, png)
    assert png.is_file()
    pixels = read_png(png)
    assert pixels.shape == (HEIGHT, WIDTH, 3)
    colours = np.unique(pixels.reshape(-1, 3), axis=0)
    ink = (pixels < 235).any(axis=2)  # anything clearly darker than the white page
    assert len(colours) > 50, f"only {len(colours)} colours: blank or unstyled page"
    assert ink.mean() > 0.01, "almost no non-white pixels"
    # The charts' fill colours are there: the page's SVG rendered, not just text.
    for name, rgb in (("histogram bars", (0x9A, 0xA5, 0xB1)), ("funnel bars", (0x00, 0x72, 0xB2))):
        assert (np.abs(pixels.astype(int) - rgb).sum(axis=2) < 12).sum() > 200, f"no {name}"
    # Content runs down the page (summary, tables, charts), not one line at the top.
    assert ink[HEIGHT // 2 :].mean() > 0.005
