"""Images for the photo tests, made here (nothing binary is checked in): good ones and hostile ones."""

from __future__ import annotations

import io
import os
import struct
import zipfile
import zlib

from PIL import Image

GPS_IFD = 0x8825
ORIENTATION = 0x0112
RED, BLUE = (220, 20, 20), (20, 20, 220)


def jpeg_with_gps_rotated(width: int = 300, height: int = 200) -> bytes:
    """A JPEG, left half red and right half blue as stored, with EXIF orientation 6 (shown turned 90 degrees
    clockwise: red on top), GPS coordinates, a camera make, an XMP packet and a comment."""
    image = Image.new("RGB", (width, height), BLUE)
    image.paste(RED, (0, 0, width // 2, height))
    exif = Image.Exif()
    exif[ORIENTATION] = 6
    exif[0x010F] = "SecretCam"  # Make
    exif.get_ifd(GPS_IFD).update({1: "N", 2: (48.0, 51.0, 29.0), 3: "E", 4: (2.0, 17.0, 40.0)})
    xmp = (b'<x:xmpmeta xmlns:x="adobe:ns:meta/"><rdf:RDF xmlns:rdf="http://www.w3.org/1999/02/22-rdf-syntax-ns#">'
           b'<rdf:Description xmlns:dc="http://purl.org/dc/elements/1.1/" dc:creator="Home Address"/></rdf:RDF>'
           b"</x:xmpmeta>")
    out = io.BytesIO()
    image.save(out, "JPEG", exif=exif.tobytes(), xmp=xmp, comment=b"taken at 12 Secret Street", quality=90)
    return out.getvalue()


def png_with_transparency(width: int = 400, height: int = 300) -> bytes:
    """An RGBA PNG: transparent left half, opaque green right half, with a text chunk."""
    from PIL.PngImagePlugin import PngInfo

    image = Image.new("RGBA", (width, height), (0, 0, 0, 0))
    image.paste((10, 200, 10, 255), (width // 2, 0, width, height))
    info = PngInfo()
    info.add_text("Comment", "GPS 48.85,2.29")
    out = io.BytesIO()
    image.save(out, "PNG", pnginfo=info)
    return out.getvalue()


def webp(width: int = 1600, height: int = 1200) -> bytes:
    image = Image.new("RGB", (width, height), (120, 60, 30))
    out = io.BytesIO()
    image.save(out, "WEBP", quality=80)
    return out.getvalue()


def noisy_jpeg(target_bytes: int) -> bytes:
    """A JPEG of random pixels of about target_bytes (random pixels do not compress)."""
    side = int((target_bytes / 1.1) ** 0.5)  # ~1.1 bytes a pixel at quality 95 for noise
    image = Image.frombytes("RGB", (side, side), os.urandom(side * side * 3))
    out = io.BytesIO()
    image.save(out, "JPEG", quality=95)
    return out.getvalue()


def truncated_jpeg() -> bytes:
    data = jpeg_with_gps_rotated(800, 600)
    return data[: len(data) // 2]


def _chunk(kind: bytes, payload: bytes) -> bytes:
    return struct.pack(">I", len(payload)) + kind + payload + struct.pack(">I", zlib.crc32(kind + payload))


def png_declaring(width: int, height: int, *, rows: int | None = 0) -> bytes:
    """A PNG (1-bit greyscale) whose header declares width x height. rows=None: every row, all zero, compressed
    (a real decompression bomb: tiny file, huge image); 0: a little IDAT that is nowhere near enough."""
    header = struct.pack(">IIBBBBB", width, height, 1, 0, 0, 0, 0)
    if rows is None:
        compressor = zlib.compressobj(9)
        row = b"\0" * (1 + (width + 7) // 8)
        data = b"".join(compressor.compress(row) for _ in range(height)) + compressor.flush()
    else:
        data = zlib.compress(b"\0" * 64)
    return b"\x89PNG\r\n\x1a\n" + _chunk(b"IHDR", header) + _chunk(b"IDAT", data) + _chunk(b"IEND", b"")


SVG_WITH_SCRIPT = (b'<?xml version="1.0"?><svg xmlns="http://www.w3.org/2000/svg" width="10" height="10">'
                   b'<script>fetch("/v1/users/me").then(r => r.text()).then(alert)</script>'
                   b'<rect width="10" height="10"/></svg>')
HTML = b"<!doctype html><html><body><script>alert(document.cookie)</script></body></html>"


def gif() -> bytes:
    out = io.BytesIO()
    Image.new("P", (20, 20)).save(out, "GIF")
    return out.getvalue()


def jpeg_with_zip() -> bytes:
    """A JPEG with a ZIP archive appended (a polyglot: a viewer shows the image, unzip finds the archive)."""
    archive = io.BytesIO()
    with zipfile.ZipFile(archive, "w") as z:
        z.writestr("payload.html", HTML)
    return jpeg_with_gps_rotated() + archive.getvalue()
