"""Opening user images with a bound on their size, read from the header before decoding.

A PNG of a few KB can hold 20000 x 20000 pixels (1.2 GB as RGB once decoded); Pillow
refuses twice ``PIL.Image.MAX_IMAGE_PIXELS`` with a ``DecompressionBombError`` and only
warns between one and two times. Here anything above ``MAX_IMAGE_PIXELS`` is refused the
same way, with the image's size and the limit, as one more "cannot use this image" error.
"""

from __future__ import annotations

import contextlib
import re
import warnings
from collections.abc import Iterator
from pathlib import Path

from PIL import Image

from nasfcn.errors import NasfcnError


class ImageTooLargeError(NasfcnError, ValueError):
    """An image has more pixels than the limit; the message gives its size and the limit."""


def pixel_limit() -> int | None:
    """The most pixels an image may have: Pillow's ``MAX_IMAGE_PIXELS`` (None: no limit)."""
    return Image.MAX_IMAGE_PIXELS


@contextlib.contextmanager
def open_image(path: str | Path) -> Iterator[Image.Image]:
    """``Image.open(path)``, refused with ``ImageTooLargeError`` past ``pixel_limit()`` pixels."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", Image.DecompressionBombWarning)  # refused below instead
        try:
            handle = Image.open(path)
        except Image.DecompressionBombError as err:
            raise ImageTooLargeError(_too_many(None, _pixels_in(str(err)))) from err
    with handle:
        width, height = handle.size
        limit = pixel_limit()
        if limit is not None and width * height > limit:
            raise ImageTooLargeError(_too_many((width, height), width * height))
        yield handle


def _too_many(size: tuple[int, int] | None, pixels: int | None) -> str:
    shown = f"{size[0]}x{size[1]} = " if size else ""
    count = f"{pixels:,} pixels" if pixels is not None else "too many pixels"
    return (
        f"the image is {shown}{count}, more than the {pixel_limit():,} an image may have "
        f"(PIL.Image.MAX_IMAGE_PIXELS); scale it down"
    )


def _pixels_in(message: str) -> int | None:
    """The pixel count in Pillow's DecompressionBombError message (None if it says none)."""
    found = re.search(r"\((\d+) pixels\)", message)
    return int(found.group(1)) if found else None
