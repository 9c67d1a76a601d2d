"""The imaging step alone (no server, no database): every colour mode and container a client may send comes out
as pixels only, in the right size, or is refused with its code."""

from __future__ import annotations

import io
from collections.abc import Callable

import pytest
from PIL import Image, ImageCms

from server.errors import HTTPFailure, InvalidParameter
from server.plugins.photos.imaging import Limits, ProcessedPhoto, process

LIMITS = Limits(max_bytes=8 * 1024 * 1024, max_pixels=40_000_000, max_side=4096, jpeg_quality=85)
SRGB = ImageCms.ImageCmsProfile(ImageCms.createProfile("sRGB")).tobytes()


def encoded(image: Image.Image, fmt: str, **options: object) -> bytes:
    out = io.BytesIO()
    image.save(out, fmt, **options)
    return out.getvalue()


def frames(mode: str = "RGB") -> list[Image.Image]:
    return [Image.new(mode, (300, 200), (200, 2, 3)) for _ in range(2)]


INPUTS: dict[str, tuple[Callable[[], bytes], str, str]] = {  # name -> (body, Content-Type, stored mode)
    "CMYK JPEG": (lambda: encoded(Image.new("CMYK", (300, 200), (0, 100, 100, 0)), "JPEG"), "image/jpeg", "RGB"),
    "greyscale JPEG": (lambda: encoded(Image.new("L", (300, 200), 128), "JPEG"), "image/jpeg", "L"),
    "JPEG with an sRGB profile": (lambda: encoded(Image.new("RGB", (300, 200)), "JPEG", icc_profile=SRGB),
                                  "image/jpeg", "RGB"),
    "JPEG with a garbage profile": (lambda: encoded(Image.new("CMYK", (300, 200)), "JPEG", icc_profile=b"x" * 80),
                                    "image/jpeg", "RGB"),
    "greyscale+alpha PNG": (lambda: encoded(Image.new("LA", (300, 200), (128, 100)), "PNG"), "image/png", "RGBA"),
    "palette PNG with transparency": (lambda: encoded(Image.new("P", (300, 200), 3), "PNG", transparency=3),
                                      "image/png", "RGBA"),
    "greyscale PNG with transparency": (lambda: encoded(Image.new("L", (300, 200), 3), "PNG", transparency=3),
                                        "image/png", "RGBA"),
    "RGB PNG with transparency": (lambda: encoded(Image.new("RGB", (300, 200)), "PNG", transparency=(0, 0, 0)),
                                  "image/png", "RGBA"),
    "palette PNG": (lambda: encoded(Image.new("P", (300, 200), 3), "PNG"), "image/png", "RGB"),
    "16-bit PNG": (lambda: encoded(Image.new("I;16", (300, 200), 3000), "PNG"), "image/png", "L"),
    "1-bit PNG": (lambda: encoded(Image.new("1", (300, 200), 1), "PNG"), "image/png", "RGB"),
    "animated PNG": (lambda: encoded(frames()[0], "PNG", save_all=True, append_images=frames()[1:]), "image/png",
                     "RGB"),
    "RGBA WebP": (lambda: encoded(Image.new("RGBA", (300, 200), (1, 2, 3, 100)), "WEBP"), "image/webp", "RGBA"),
    "animated WebP": (lambda: encoded(frames()[0], "WEBP", save_all=True, append_images=frames()[1:]), "image/webp",
                      "RGB"),
}


@pytest.mark.parametrize("name", list(INPUTS))
def test_every_mode_comes_out_as_pixels_only(name: str) -> None:
    make, content_type, mode = INPUTS[name]
    photo = process(make(), content_type, LIMITS)
    assert [(r.size, r.width, r.height) for r in photo.renditions] == [
        ("original", 300, 200), ("1024", 300, 200), ("256", 256, 171)]
    for rendition in photo.renditions:
        stored = Image.open(io.BytesIO(rendition.data))
        assert stored.format == {"image/jpeg": "JPEG", "image/png": "PNG", "image/webp": "WEBP"}[content_type]
        assert stored.mode == mode and getattr(stored, "n_frames", 1) == 1, (stored.mode, stored.info)
        assert not {"icc_profile", "exif", "xmp", "comment", "transparency"} & set(stored.info), stored.info


def halves(mode: str, left: object, right: object, **options: object) -> bytes:
    """A 300 x 200 PNG: its left half one value, its right half another."""
    image = Image.new(mode, (300, 200), right)  # type: ignore[arg-type]
    image.paste(Image.new(mode, (150, 200), left), (0, 0))  # type: ignore[arg-type]  (a colour: I;16 misreads it)
    return encoded(image, "PNG", **options)


def pixels(photo: ProcessedPhoto) -> list[tuple[str, str, object, object]]:
    """Each rendition's mode and the pixels at the middle of its left and right halves."""
    found = []
    for rendition in photo.renditions:
        stored = Image.open(io.BytesIO(rendition.data))
        y = stored.height // 2
        found.append((rendition.size, stored.mode, stored.getpixel((stored.width // 4, y)),
                      stored.getpixel((stored.width * 3 // 4, y))))
    return found


def test_a_16_bit_greyscale_png_is_scaled_to_8_bits_not_clipped_to_white() -> None:
    photo = process(halves("I;16", 8000, 0x8000), "image/png", LIMITS)
    assert pixels(photo) == [(size, "L", 31, 128) for size in ("original", "1024", "256")]
    assert pixels(process(halves("I;16", 0, 0xFFFF), "image/png", LIMITS))[0] == ("original", "L", 0, 255)


TRANSPARENT_KEYS = {  # name -> (PNG with its left half the tRNS colour key, the right half's colour stored)
    "greyscale": (lambda: halves("L", 77, 200, transparency=77), (200, 200, 200, 255)),
    "RGB": (lambda: halves("RGB", (1, 2, 3), (10, 150, 90), transparency=(1, 2, 3)), (10, 150, 90, 255)),
    "16-bit greyscale": (lambda: halves("I;16", 8000, 0x8000, transparency=8000), (128, 128, 128, 255)),
    "1-bit": (lambda: halves("1", 0, 1, transparency=0), (255, 255, 255, 255)),
}


@pytest.mark.parametrize("name", list(TRANSPARENT_KEYS))
def test_a_png_colour_key_is_kept_as_alpha(name: str) -> None:
    make, right = TRANSPARENT_KEYS[name]
    found = pixels(process(make(), "image/png", LIMITS))
    assert [(size, mode, left[3], kept) for size, mode, left, kept in found] == [  # type: ignore[index]
        (size, "RGBA", 0, right) for size in ("original", "1024", "256")], found


def test_the_original_is_capped_and_thumbnails_never_enlarge() -> None:
    wide = process(encoded(Image.new("RGB", (5000, 10)), "JPEG"), "image/jpeg", LIMITS)
    assert [(r.width, r.height) for r in wide.renditions] == [(4096, 8), (1024, 2), (256, 1)]
    tiny = process(encoded(Image.new("RGB", (1, 1)), "PNG"), "image/png", LIMITS)
    assert [(r.width, r.height) for r in tiny.renditions] == [(1, 1), (1, 1), (1, 1)]


def test_an_original_too_detailed_to_store_is_scaled_down_until_it_fits() -> None:
    import os

    noise = Image.frombytes("RGB", (700, 700), os.urandom(700 * 700 * 3))
    small = Limits(max_bytes=400_000, max_pixels=40_000_000, max_side=4096, jpeg_quality=95)
    photo = process(encoded(noise, "PNG"), "image/png", small)  # ~1.5 MB as PNG
    assert len(photo.original.data) <= 400_000 and photo.original.width < 700


@pytest.mark.parametrize(("body", "content_type", "error"), [
    (b"GIF89a" + b"\0" * 20, "image/gif", HTTPFailure), (b"<svg/>", "image/png", HTTPFailure),
    (b"\xff\xd8\xff\xe0" + b"\0" * 30, "image/jpeg", HTTPFailure),
    (encoded(Image.new("RGB", (400, 300)), "WEBP")[:60], "image/webp", InvalidParameter)])
def test_what_is_refused_raises_the_answer(body: bytes, content_type: str, error: type) -> None:
    with pytest.raises(error):
        process(body, content_type, LIMITS)
