"""GET /review-queue: a web page on which an operator reviews the flags, using the API like any client."""

from __future__ import annotations

import functools
import html
from importlib import resources

from fastapi import APIRouter
from fastapi.responses import Response

from app.api.deps import UrlRootDep
from app.errors import NotFound

router = APIRouter(include_in_schema=False)

# The page's files, read from the package, so that they ship in the wheel and in the image.
_PAGE = "review-queue.html"
_ASSETS = {"app.js": ("app.js", "text/javascript; charset=utf-8"),
           "style.css": ("style.css", "text/css; charset=utf-8"),
           "icon.svg": ("icon.svg", "image/svg+xml")}
# Only the page's own script and style run, and only this service is called: an injected <script> or a
# result's text that slipped into the markup could neither run nor send anything elsewhere.
_HEADERS = {"Content-Security-Policy": "default-src 'none'; script-src 'self'; style-src 'self'; "
                                       "img-src 'self' blob:; connect-src 'self'; base-uri 'none'; "
                                       "form-action 'none'; frame-ancestors 'none'",
            "X-Content-Type-Options": "nosniff", "Cache-Control": "no-cache"}


@functools.cache
def _content(filename: str) -> bytes:
    """Read once, when first asked for: not at import, and not from disk on the event loop every time."""
    return resources.files("app").joinpath("pages", filename).read_bytes()


def _asset(name: str) -> Response:
    if name not in _ASSETS:
        raise NotFound(f"no file {name!r} in the review queue page")
    filename, media_type = _ASSETS[name]
    return Response(_content(filename), media_type=media_type, headers=_HEADERS)


@functools.cache
def _page(root: str) -> bytes:
    """The page, its links under the path prefix a reverse proxy serves the API under (VAE_ROOT_PATH)."""
    return _content(_PAGE).replace(b"{root}", html.escape(root).encode())


@router.get("/review-queue")
async def review_queue_page(root: UrlRootDep) -> Response:
    return Response(_page(root), media_type="text/html; charset=utf-8", headers=_HEADERS)


@router.get("/review-queue/{name}")
async def review_queue_asset(name: str) -> Response:
    return _asset(name)
