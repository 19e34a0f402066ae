"""Fetch a provider's output (an https URL or a ``data:`` URI) and prove it is an image.

Replicate deletes outputs an hour after a prediction, and Cog answers with base64 ``data:`` URIs,
so both providers download right away and hand the job bytes it can keep. Everything that goes
wrong here is a ``RetryableImageError``: the prediction itself succeeded, so the next attempt
re-downloads (Replicate resumes the same prediction) instead of paying for a new image. A
provider that was billed for the prediction says so with a ``DownloadError``.
"""

from __future__ import annotations

import base64
import binascii
import io
import logging
import urllib.parse
from collections.abc import Mapping

import httpx
from PIL import Image, UnidentifiedImageError

from ..errors import PermanentImageError, RetryableImageError
from ..transport import parse_retry_after

__all__ = [
    "MAX_IMAGE_BYTES",
    "DownloadError",
    "describe_url",
    "download_image",
    "first_output_url",
    "flagged_as_nsfw",
    "image_extension",
]

log = logging.getLogger(__name__)

# Flux-Schnell's largest output is about 1.5 MB as PNG; anything far past that is not our image.
MAX_IMAGE_BYTES = 50 * 1024 * 1024

# Pillow's format names -> the file extensions the rest of Storyboard uses.
_EXTENSIONS = {"PNG": "png", "WEBP": "webp", "JPEG": "jpg", "GIF": "gif"}


class DownloadError(RetryableImageError):
    """A prediction succeeded, and was billed, but its image could not be fetched or read.

    The next attempt downloads from the same prediction again rather than paying for a new one.
    ``prediction_id`` and ``cost`` let the job count that bill once per prediction, even when no
    attempt ever gets the image.
    """

    def __init__(self, message: str, *, prediction_id: str | None, cost: float,
                 retry_after: float | None = None) -> None:
        super().__init__(message, retry_after=retry_after)
        self.prediction_id = prediction_id
        self.cost = cost  # what the prediction was billed, in USD


def first_output_url(output: object) -> str | None:
    """The first file of a prediction's ``output``: a list of URLs, one URL, or nothing yet."""
    if isinstance(output, str):
        return output or None
    if isinstance(output, list) and output and isinstance(output[0], str):
        return output[0] or None
    return None


def flagged_as_nsfw(checker: str, prediction_id: str) -> PermanentImageError:
    """The error for a prediction the model's safety checker refused: retrying the same
    prompt cannot help, so it says what a person can change."""
    return PermanentImageError(
        f"{checker} safety checker flagged the image for this scene as NSFW "
        f"(prediction {prediction_id}). Reword the scene's prompt or style and generate it again."
    )


def describe_url(url: str) -> str:
    """A short form of ``url`` for messages: a ``data:`` URI can be megabytes long."""
    if url.startswith("data:"):
        return url.split(",", 1)[0][:60] + ",…"
    return url if len(url) <= 200 else url[:200] + "…"


async def download_image(
    client: httpx.AsyncClient,
    url: str,
    *,
    headers: Mapping[str, str] | None = None,
    timeout: float = 60.0,
) -> tuple[bytes, str]:
    """Return ``(bytes, extension)`` of the image at ``url`` (https or ``data:``).

    ``headers`` go with the request (Replicate may want its Authorization header on file URLs);
    the caller decides which hosts may see them.
    """
    if url.startswith("data:"):
        data = _decode_data_uri(url)
    else:
        data = await _fetch(client, url, headers=headers, timeout=timeout)
    return data, image_extension(data, describe_url(url))


async def _fetch(
    client: httpx.AsyncClient, url: str, *, headers: Mapping[str, str] | None, timeout: float
) -> bytes:
    scheme = urllib.parse.urlsplit(url).scheme
    if scheme not in ("https", "http"):
        raise RetryableImageError(f"output {describe_url(url)} is not an http(s) or data: URL")
    try:
        async with client.stream(
            "GET", url, headers=dict(headers or {}), timeout=timeout, follow_redirects=True
        ) as response:
            if response.status_code != 200:
                # 404/410 here usually means the output expired (Replicate keeps files an hour);
                # a file host that is throttling (429) or busy (503) may say when to come back.
                hint = (parse_retry_after(response.headers, "")
                        if response.status_code in (429, 503) else None)
                raise RetryableImageError(
                    f"downloading {describe_url(url)} failed: HTTP {response.status_code}",
                    retry_after=hint,
                )
            chunks: list[bytes] = []
            size = 0
            async for chunk in response.aiter_bytes():
                size += len(chunk)
                if size > MAX_IMAGE_BYTES:
                    raise RetryableImageError(
                        f"downloading {describe_url(url)}: more than {MAX_IMAGE_BYTES} bytes"
                    )
                chunks.append(chunk)
    except httpx.HTTPError as exc:
        raise RetryableImageError(
            f"downloading {describe_url(url)} failed: {type(exc).__name__}"
        ) from exc
    log.debug("downloaded %d bytes from %s", size, describe_url(url))
    return b"".join(chunks)


def _decode_data_uri(url: str) -> bytes:
    header, sep, payload = url.partition(",")
    if not sep:
        raise RetryableImageError(f"malformed data: URI {describe_url(url)}")
    try:
        if header.endswith(";base64"):
            return base64.b64decode(payload, validate=False)
        return urllib.parse.unquote_to_bytes(payload)
    except (binascii.Error, ValueError) as exc:
        raise RetryableImageError(f"malformed data: URI {describe_url(url)}") from exc


def image_extension(data: bytes, where: str = "image") -> str:
    """The extension for ``data`` after Pillow checked it is a whole image; else retryable."""
    if not data:
        raise RetryableImageError(f"{where}: empty file")
    # Structure only, not a full decode: verify() is about 1 ms where decoding a 1 MP image is
    # over 10, and this runs on the event loop for every image of every job.
    try:
        with Image.open(io.BytesIO(data)) as image:
            fmt = image.format or ""
            image.verify()
        # verify() is a no-op for JPEG: a file cut short in transit lacks its end marker.
        if fmt == "JPEG" and not data.rstrip(b"\0").endswith(b"\xff\xd9"):
            raise OSError("JPEG data is truncated")
    except (
        UnidentifiedImageError,
        OSError,  # truncated or corrupt data
        SyntaxError,  # some Pillow plugins signal a broken header this way
        ValueError,
        Image.DecompressionBombError,
    ) as exc:
        raise RetryableImageError(f"{where}: not a readable image ({exc})") from exc
    return _EXTENSIONS.get(fmt, fmt.lower() or "bin")
