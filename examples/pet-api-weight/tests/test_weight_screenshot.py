"""The chart as a browser shows it: headless Chromium renders the served SVG and the line's colour is on screen."""

import asyncio
import shutil
import struct
import tempfile
import zlib
from pathlib import Path

import pytest
from pet_api_weight.chart import HEIGHT, LINE_COLOR, WIDTH

from tests.factories import create_pet, user_with_token
from tests.plugins.core.handlers.test_docs import CHROMIUM_FLAGS
from tests.plugins.records.test_handlers import add_record

LINE_RGB = bytes.fromhex(LINE_COLOR[1:])


def png_pixels(path: Path) -> tuple[int, int, list[bytes]]:
    """Width, height and RGB rows of an 8-bit, non-interlaced RGB or RGBA PNG file (what Chromium writes)."""
    data = path.read_bytes()
    assert data[:8] == b"\x89PNG\r\n\x1a\n", data[:16]
    pos, idat, header = 8, [], None
    while pos < len(data):
        length, kind = struct.unpack(">I4s", data[pos:pos + 8])
        if kind == b"IHDR":
            header = struct.unpack(">IIBBBBB", data[pos + 8:pos + 8 + length])
        elif kind == b"IDAT":
            idat.append(data[pos + 8:pos + 8 + length])
        pos += 12 + length
    assert header is not None
    width, height, depth, color, _, _, interlace = header
    assert (depth, color in (2, 6), interlace) == (8, True, 0), header
    bpp = 3 if color == 2 else 4
    raw, stride = zlib.decompress(b"".join(idat)), width * bpp
    rows, prev = [], bytearray(stride)
    for y in range(height):
        start = y * (stride + 1)
        kind, line = raw[start], bytearray(raw[start + 1:start + 1 + stride])
        for i in range(stride):
            a = line[i - bpp] if i >= bpp else 0
            b, c = prev[i], (prev[i - bpp] if i >= bpp else 0)
            if kind == 4:
                p = a + b - c
                a = a if abs(p - a) <= abs(p - b) and abs(p - a) <= abs(p - c) else b if abs(p - b) <= abs(p - c) else c
            line[i] = (line[i] + {0: 0, 1: a, 2: b, 3: (a + b) // 2, 4: a}[kind]) & 255
        rows.append(bytes(line) if bpp == 3 else bytes(v for j, v in enumerate(line) if j % 4 != 3))
        prev = line
    return width, height, rows


def line_pixels(rows: list[bytes]) -> list[tuple[int, int]]:
    """(x, y) of every pixel of exactly the line's colour."""
    return [(i // 3, y) for y, row in enumerate(rows) for i in range(0, len(row), 3) if row[i:i + 3] == LINE_RGB]


async def screenshot(url: str, out: Path) -> None:
    chromium = shutil.which("chromium") or shutil.which("chromium-browser")
    assert chromium, "headless Chromium is needed: apt-get install chromium (scripts/test.sh does)"
    with tempfile.TemporaryDirectory(prefix="chromium-") as profile:
        process = await asyncio.create_subprocess_exec(
            chromium, *CHROMIUM_FLAGS, f"--user-data-dir={profile}", "--force-device-scale-factor=1",
            "--hide-scrollbars", f"--window-size={WIDTH},{HEIGHT}", f"--screenshot={out}", url,
            stdout=asyncio.subprocess.DEVNULL, stderr=asyncio.subprocess.DEVNULL)
        try:
            await asyncio.wait_for(process.wait(), timeout=90)
        finally:
            if process.returncode is None:
                process.kill()
                await process.wait()


@pytest.mark.slow
@pytest.mark.gen_test(timeout=180)
async def test_chromium_shows_the_line_and_an_empty_chart_shows_none(api, app, tmp_path):
    # Chromium cannot send the bearer token, so it renders the bytes the server answered (as a front end
    # shows a fetched chart through a blob URL).
    _, token = await user_with_token(app)
    pet = await create_pet(api, token)
    for day, value in [("2024-01-01", 6.0), ("2024-02-01", 7.5), ("2024-03-01", 7.0), ("2024-04-01", 8.0)]:
        await add_record(api, token, pet["id"], date=day, value=value)
    empty = await create_pet(api, token, name="Empty")
    shots = {}
    for name, pet_id in [("line", pet["id"]), ("empty", empty["id"])]:
        chart = await api.get(f"/v1/pets/{pet_id}/weight.svg", token=token)
        assert chart.status == 200 and chart.headers["Content-Type"] == "image/svg+xml", chart.raw[:200]
        (tmp_path / f"{name}.svg").write_bytes(chart.raw)
        await screenshot((tmp_path / f"{name}.svg").as_uri(), tmp_path / f"{name}.png")
        shots[name] = png_pixels(tmp_path / f"{name}.png")
    width, height, rows = shots["line"]
    assert (width, height) == (WIDTH, HEIGHT)
    drawn = line_pixels(rows)
    assert len(drawn) > 500, len(drawn)  # a 3 px line across the plot, not a stray pixel
    xs = [x for x, _ in drawn]
    assert min(xs) < 90 and max(xs) > WIDTH - 70  # from the first date to the last
    assert line_pixels(shots["empty"][2]) == []
    assert len({row for row in shots["empty"][2]}) > 1  # the empty chart is drawn (axes, message), not blank
