"""Turning an uploaded image into the stored ones: checked, decoded, oriented, stripped, re-encoded.

Runs in the photos' worker pool (never on the event loop): Pillow releases the GIL while it decodes,
resizes and encodes. Everything here is pure: bytes in, bytes out, or an APIError saying why not."""

from __future__ import annotations

import hashlib
import io
from collections.abc import Iterable
from dataclasses import dataclass

from PIL import Image, ImageCms, ImageMath, ImageOps, UnidentifiedImageError

from server.errors import HTTPFailure, InvalidParameter

# Content-Type -> the one Pillow format that may decode it; nothing else is tried (no GIF, SVG, TIFF, PSD...).
FORMATS = {"image/jpeg": "JPEG", "image/png": "PNG", "image/webp": "WEBP"}
EXTENSIONS = {"image/jpeg": "jpg", "image/png": "png", "image/webp": "webp"}
THUMBNAILS = (1024, 256)
SIZES = ("256", "1024", "original")
ALPHA_MODES = {"RGBA", "LA", "PA", "RGBa", "La"}
SIXTEEN_BIT_GREY = {"I;16", "I;16B", "I;16L", "I;16N", "I"}  # how Pillow opens a 16-bit greyscale PNG
SHRINK_TRIES = 3  # an original re-encoded over photo_max_bytes is scaled down by 0.7 at most this often
_SRGB = ImageCms.ImageCmsProfile(ImageCms.createProfile("sRGB"))


@dataclass(frozen=True, slots=True)
class Rendition:
    """One stored image: 'original', '1024' or '256'."""

    size: str
    width: int
    height: int
    data: bytes  # empty when the photo process sent the literals instead
    literals: Iterable[str] = ()  # data as the store's SQL literals (re-iterable: a replayed transaction reads again)


@dataclass(frozen=True, slots=True)
class ProcessedPhoto:
    content_type: str
    etag: str  # 32 hex digits of the stored original's SHA-256
    renditions: tuple[Rendition, ...]  # original first

    @property
    def original(self) -> Rendition:
        return self.renditions[0]


@dataclass(frozen=True, slots=True)
class Limits:
    max_bytes: int
    max_pixels: int
    max_side: int
    jpeg_quality: int


def refused_type(content_type: str | None) -> HTTPFailure:
    """415: the declared type is not one pet-api stores."""
    return HTTPFailure(f"Content-Type must be one of {', '.join(FORMATS)}, not {content_type or 'none'}", status=415)


def process(data: bytes, content_type: str, limits: Limits) -> ProcessedPhoto:
    """The stored renditions of an upload, or: 415 when it is not really `content_type`; 400 when it declares
    more than max_pixels (checked from the header, before any pixel is decoded) or is truncated or corrupt."""
    expected = FORMATS.get(content_type)
    if expected is None:
        raise refused_type(content_type)
    try:
        image = Image.open(io.BytesIO(data), formats=[expected])
    except Image.DecompressionBombError:
        raise _bomb(limits) from None
    except UnidentifiedImageError:
        raise HTTPFailure(f"the body is not a {expected} image (its content does not match {content_type})",
                          status=415) from None
    except (OSError, ValueError, SyntaxError) as exc:  # a header Pillow recognised, then choked on
        raise _corrupt(exc) from None
    with image:
        width, height = image.size
        if width < 1 or height < 1 or width * height > limits.max_pixels:
            raise _bomb(limits, width, height)
        try:
            if expected == "JPEG":  # DCT scaling: decode no larger than needed (less memory and time)
                image.draft("RGB", (limits.max_side, limits.max_side))
            image.load()
            clean = _clean(image)
        except Image.DecompressionBombError:
            raise _bomb(limits) from None
        except (OSError, ValueError, SyntaxError, EOFError, MemoryError) as exc:
            raise _corrupt(exc) from None
    return _renditions(clean, content_type, limits)


def _bomb(limits: Limits, width: int | None = None, height: int | None = None) -> InvalidParameter:
    declared = f" ({width} x {height})" if width is not None else ""
    return InvalidParameter(f"image: declares more than {limits.max_pixels} pixels{declared}",
                            errors=[{"field": "body", "message": f"more than {limits.max_pixels} pixels"}])


def _corrupt(exc: BaseException) -> InvalidParameter:
    reason = " ".join(str(exc).split())[:200] or exc.__class__.__name__
    return InvalidParameter(f"image: truncated or corrupt ({reason})",
                            errors=[{"field": "body", "message": f"truncated or corrupt image: {reason}"}])


def _clean(image: Image.Image) -> Image.Image:
    """The pixels only: EXIF orientation applied, colours converted to sRGB, one frame, no metadata."""
    frame = ImageOps.exif_transpose(image) or image
    if frame.mode in SIXTEEN_BIT_GREY:
        frame = _eight_bit_grey(frame)
    elif frame.mode in ("1", "L", "RGB") and "transparency" in frame.info:  # a tRNS colour key: alpha (the
        frame = frame.convert("RGBA")  # encoder gets no info, so a key left there would be dropped)
    alpha = frame.mode in ALPHA_MODES or (frame.mode == "P" and "transparency" in frame.info)
    mode = "RGBA" if alpha else "RGB"
    icc = image.info.get("icc_profile")
    converted: Image.Image | None = None
    if icc and frame.mode in ("RGB", "RGBA", "CMYK", "L"):
        try:
            source = ImageCms.ImageCmsProfile(io.BytesIO(icc))
            converted = ImageCms.profileToProfile(frame, source, _SRGB, outputMode=mode if frame.mode != "L" else "L")
        except (ImageCms.PyCMSError, OSError, ValueError, TypeError):
            converted = None  # an unusable profile: its colours are taken as sRGB
    result = converted if converted is not None else frame
    if result.mode not in (mode, "L") or (result.mode == "L" and alpha):
        result = result.convert(mode)
    pixels = result.copy() if result is image else result
    pixels.info = {}  # no EXIF, XMP, ICC, comments or text chunks reach the encoder
    return pixels


def _eight_bit_grey(frame: Image.Image) -> Image.Image:
    """16-bit greyscale scaled to 8 bits (Pillow's convert clips every value over 255 to white), as L; with its
    tRNS colour key, compared on the 16-bit values, as alpha (LA)."""
    grey = frame.point(lambda v: v / 256).convert("L")
    key = frame.info.get("transparency")
    if isinstance(key, int):
        grey.putalpha(ImageMath.lambda_eval(lambda a: (a["v"] != key) * 255, v=frame.convert("I")).convert("L"))
    return grey


def _encode(image: Image.Image, fmt: str, limits: Limits) -> bytes:
    out = io.BytesIO()
    if fmt == "JPEG":
        image.save(out, "JPEG", quality=limits.jpeg_quality, exif=b"", icc_profile=None)
    elif fmt == "PNG":
        image.save(out, "PNG", compress_level=6)
    else:
        image.save(out, "WEBP", quality=limits.jpeg_quality, method=4, exif=b"", icc_profile="", xmp="")
    return out.getvalue()


def _renditions(image: Image.Image, content_type: str, limits: Limits) -> ProcessedPhoto:
    fmt = FORMATS[content_type]
    original = image
    if max(image.size) > limits.max_side:
        original = image.copy()
        original.thumbnail((limits.max_side, limits.max_side), Image.Resampling.LANCZOS)
    data = _encode(original, fmt, limits)
    for _ in range(SHRINK_TRIES):
        if len(data) <= limits.max_bytes:
            break
        original = original.resize((max(1, int(original.width * 0.7)), max(1, int(original.height * 0.7))),
                                   Image.Resampling.LANCZOS)
        data = _encode(original, fmt, limits)
    else:
        if len(data) > limits.max_bytes:
            raise InvalidParameter(f"image: over {limits.max_bytes} bytes even re-encoded and scaled down",
                                   errors=[{"field": "body", "message": "too detailed to store"}])
    renditions = [Rendition("original", original.width, original.height, data)]
    source = original
    for side in THUMBNAILS:
        thumb = source.copy()
        thumb.thumbnail((side, side), Image.Resampling.LANCZOS)  # never enlarges
        renditions.append(Rendition(str(side), thumb.width, thumb.height, _encode(thumb, fmt, limits)))
        source = thumb
    etag = hashlib.sha256(data).hexdigest()[:32]
    return ProcessedPhoto(content_type, etag, tuple(renditions))

