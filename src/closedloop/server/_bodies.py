"""Request bodies read with a size limit: never more than one chunk past it in memory."""

from __future__ import annotations

from starlette.requests import Request


class BodyTooLargeError(Exception):
    """The body is over ``limit`` bytes (declared or as read); the caller's 413."""

    def __init__(self, limit: int) -> None:
        super().__init__(f"the body is over the {limit}-byte limit")
        self.limit = limit


async def bounded_body(request: Request, limit: int) -> bytes:
    """The whole body, refused as soon as ``Content-Length`` or the bytes read pass
    ``limit``."""
    declared = request.headers.get("content-length")
    if declared is not None and declared.isdigit() and int(declared) > limit:
        raise BodyTooLargeError(limit)
    chunks: list[bytes] = []
    size = 0
    async for chunk in request.stream():
        size += len(chunk)
        if size > limit:
            raise BodyTooLargeError(limit)
        chunks.append(chunk)
    return b"".join(chunks)
