"""Images for the reports: each downloaded once per task, decoded once, kept small.

A report draws the same image in several places (samples, highest/lowest mIoU, two PDFs), so the cache
fetches every URI at most once, decodes it to an RGB thumbnail and keeps the thumbnail. Thumbnails live in
memory up to a byte budget; beyond that the least recently used ones move to ``.npy`` files in a temporary
folder, so a large job neither downloads twice nor holds every image in memory.

An image that cannot be fetched or decoded becomes an ``ImageFailure``: the figures draw it as a placeholder
and the report lists it, instead of one corrupt file aborting the whole analysis.
"""

from __future__ import annotations

import hashlib
import io
import logging
import tempfile
import threading
from collections import OrderedDict
from collections.abc import Callable, Iterable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from types import TracebackType

import numpy as np
from PIL import Image

log = logging.getLogger(__name__)

Fetch = Callable[[str], bytes]

DEFAULT_MAX_SIDE = 320
DEFAULT_MEMORY_LIMIT_BYTES = 64 * 1024 * 1024


@dataclass(frozen=True)
class Thumbnail:
    """An image downscaled for plotting, with the size of the original it stands for."""

    uri: str
    pixels: np.ndarray  # uint8 (h, w, 3)
    width: int  # of the original image, in pixels
    height: int

    @property
    def scale(self) -> float:
        """Thumbnail pixels per original pixel (1.0 when the image was small enough to keep)."""
        return self.pixels.shape[1] / self.width


@dataclass(frozen=True)
class ImageFailure:
    """An image that could not be fetched or decoded, and why."""

    uri: str
    error: str


def decode_thumbnail(uri: str, data: bytes, max_side: int) -> Thumbnail:
    """Decode image bytes to an RGB thumbnail whose longer side is at most ``max_side`` (aspect kept)."""
    with Image.open(io.BytesIO(data)) as image:
        width, height = image.size
        # JPEG can decode at 1/2, 1/4 or 1/8 scale directly, much faster than decoding in full and shrinking.
        image.draft("RGB", (max_side, max_side))
        rgb = image.convert("RGB")
    rgb.thumbnail((max_side, max_side), Image.Resampling.BILINEAR)
    return Thumbnail(uri=uri, pixels=np.asarray(rgb, dtype=np.uint8), width=width, height=height)


def load_thumbnail(uri: str, fetch: Fetch, max_side: int) -> Thumbnail | ImageFailure:
    """Fetch and decode one image; any error becomes an ``ImageFailure`` naming the URI and the cause."""
    try:
        return decode_thumbnail(uri, fetch(uri), max_side)
    except Exception as err:  # a report must survive whatever a fetch or a decoder raises for one image
        log.warning("Cannot draw image %s: %s: %s", uri, type(err).__name__, err)
        return ImageFailure(uri=uri, error=f"{type(err).__name__}: {err}")


@dataclass(frozen=True)
class _SpilledThumbnail:
    path: Path
    width: int
    height: int


class ImageCache:
    """Thumbnails by URI, each fetched at most once; thread-safe, so images can be prefetched in parallel."""

    def __init__(
        self,
        fetch: Fetch,
        max_side: int = DEFAULT_MAX_SIDE,
        memory_limit_bytes: int = DEFAULT_MEMORY_LIMIT_BYTES,
    ) -> None:
        if max_side < 1:
            raise ValueError(f"ImageCache max_side must be at least 1 pixel, got {max_side}")
        self._fetch = fetch
        self.max_side = max_side
        self._memory_limit_bytes = memory_limit_bytes
        self._lock = threading.Lock()
        self._uri_locks: dict[str, threading.Lock] = {}
        self._in_memory: OrderedDict[str, Thumbnail] = OrderedDict()
        self._memory_bytes = 0
        self._spilled: dict[str, _SpilledThumbnail] = {}
        self._spill_dir: tempfile.TemporaryDirectory[str] | None = None
        self._failures: dict[str, ImageFailure] = {}

    def __enter__(self) -> ImageCache:
        return self

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.close()

    def close(self) -> None:
        """Drop every thumbnail and delete the spill folder."""
        with self._lock:
            self._in_memory.clear()
            self._memory_bytes = 0
            self._spilled.clear()
            if self._spill_dir is not None:
                self._spill_dir.cleanup()
                self._spill_dir = None

    @property
    def bytes_in_memory(self) -> int:
        """Pixel bytes of the thumbnails held in memory; the rest wait in the spill folder."""
        with self._lock:
            return self._memory_bytes

    @property
    def failures(self) -> dict[str, str]:
        """The error of every image that could not be drawn, by URI."""
        with self._lock:
            return {uri: failure.error for uri, failure in self._failures.items()}

    def get(self, uri: str) -> Thumbnail | ImageFailure:
        with self._lock:
            uri_lock = self._uri_locks.setdefault(uri, threading.Lock())
        with uri_lock:
            known = self._lookup(uri)
            if known is not None:
                return known
            loaded = load_thumbnail(uri, self._fetch, self.max_side)
            with self._lock:
                if isinstance(loaded, ImageFailure):
                    self._failures[uri] = loaded
                else:
                    self._keep_in_memory(loaded)
            return loaded

    def prefetch(self, uris: Iterable[str], max_workers: int = 8) -> None:
        """Download and decode images in parallel threads (fetching is I/O-bound; decoding frees the GIL)."""
        unique = list(dict.fromkeys(uris))
        if not unique:
            return
        with ThreadPoolExecutor(max_workers=min(max_workers, len(unique))) as pool:
            list(pool.map(self.get, unique))

    def _lookup(self, uri: str) -> Thumbnail | ImageFailure | None:
        with self._lock:
            if uri in self._failures:
                return self._failures[uri]
            if uri in self._in_memory:
                self._in_memory.move_to_end(uri)
                return self._in_memory[uri]
            spilled = self._spilled.pop(uri, None)
        if spilled is None:
            return None
        thumbnail = Thumbnail(
            uri=uri, pixels=np.load(spilled.path), width=spilled.width, height=spilled.height
        )
        spilled.path.unlink()
        with self._lock:
            self._keep_in_memory(thumbnail)
        return thumbnail

    def _keep_in_memory(self, thumbnail: Thumbnail) -> None:
        """Add a thumbnail and spill the least recently used ones to disk; call with ``_lock`` held."""
        self._in_memory[thumbnail.uri] = thumbnail
        self._memory_bytes += thumbnail.pixels.nbytes
        while self._memory_bytes > self._memory_limit_bytes and len(self._in_memory) > 1:
            _, oldest = self._in_memory.popitem(last=False)
            self._memory_bytes -= oldest.pixels.nbytes
            self._spill(oldest)

    def _spill(self, thumbnail: Thumbnail) -> None:
        if self._spill_dir is None:
            self._spill_dir = tempfile.TemporaryDirectory(prefix="report-images-")
        name = hashlib.sha256(thumbnail.uri.encode()).hexdigest()[:32]
        path = Path(self._spill_dir.name) / f"{name}.npy"
        np.save(path, thumbnail.pixels)
        self._spilled[thumbnail.uri] = _SpilledThumbnail(
            path=path, width=thumbnail.width, height=thumbnail.height
        )
