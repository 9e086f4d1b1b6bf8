"""GET /model/versions/{version}/report[/{name}]: the evaluation report each published version ships with.

A version's evidence (its figures, and the plots a person reads at a glance) lies in the model store. Where
the store is a Docker volume or on another host, this is how an operator or a client sees it, with no shell
on the server. The files are read as they are: the training job wrote them when it published the version.
"""

from __future__ import annotations

import asyncio
import datetime as dt
from pathlib import Path
from typing import Annotated, Literal

from fastapi import APIRouter, Depends, Query, Request
from fastapi.responses import Response

from app.api.deps import SettingsDep, UrlRootDep, reject_unknown_or_repeated_query_parameters
from app.config import Settings
from app.errors import NotFound
from app.report_links import make_access
from app.schemas import VersionReport, problem_responses
from training.catalog import report_files
from training.report_page import CONTENT_SECURITY_POLICY, REPORT_PAGE, render_report_page
from training.store import REPORT_FILES, REPORT_PATH, list_versions

router = APIRouter(tags=["operations"], dependencies=[Depends(reject_unknown_or_repeated_query_parameters)])
# The files, which a browser shows: the app guards them with an API key *or* a report link's `?access=`
# (app/report_links.py), since a browser's address bar cannot send a key.
files = APIRouter(tags=["operations"], dependencies=[Depends(reject_unknown_or_repeated_query_parameters)])

PAGE = REPORT_PAGE  # report.md as a web page with the plots: rendered here, from report.md, as asked for
ReportFile = Literal[(PAGE, *REPORT_FILES)]
_MEDIA_TYPES = {".html": "text/html; charset=utf-8", ".md": "text/markdown; charset=utf-8",
                ".json": "application/json", ".png": "image/png"}
# Shown as what they are, never run: report.md quotes the names of a user's test images.
_HEADERS = {"X-Content-Type-Options": "nosniff", "Content-Security-Policy": "default-src 'none'"}


def report_url(root: str, version: int) -> str:
    return f"{root}/model/versions/{version}/report"


def _version_dir(settings: Settings, version: int) -> Path:
    """The version's folder; NotFound, saying which versions there are, if it is not published."""
    published = list_versions(settings.model_dir)
    if version not in published:
        listed = ", ".join(map(str, published[-5:])) if published else "none"
        if len(published) > 5:  # a store of hundreds of versions: the newest say enough
            listed = f"{len(published)} versions, {published[0]} to {published[-1]}; the newest {listed}"
        raise NotFound(f"model {settings.model_name!r} has no published version {version} (published: {listed}; "
                       "see /model/versions)")
    return settings.model_dir / str(version)


def _no_report(settings: Settings, version: int) -> NotFound:
    return NotFound(f"version {version} of {settings.model_name!r} has no evaluation report: it was published "
                    "without labelled test images (recalibrate --no-report, or a model of a folder of images without "
                    "--test-normals and --test-anomalies)")


def _index(settings: Settings, version: int) -> list[str]:
    files = report_files(_version_dir(settings, version))
    if not files:
        raise _no_report(settings, version)
    return [PAGE, *files] if "report.md" in files else files


def _page(settings: Settings, version: int, plot_query: str) -> bytes:
    markdown = _read(settings, version, "report.md").decode()
    plots = [name for name in report_files(settings.model_dir / str(version)) if name.endswith(".png")]
    return render_report_page(markdown, plots, plot_query).encode()


def _browser_link(request: Request, settings: Settings, base: str, version: int,
                  listed: list[str]) -> tuple[str | None, str | None]:
    """report.html's URL, with a report link's `?access=` made with the caller's key when keys are set."""
    if PAGE not in listed:
        return None, None
    key = getattr(request.state, "api_key", None)
    if key is None:  # no API keys: the page opens as it is
        return f"{base}/{PAGE}", None
    made = make_access(request.app.state.api_keys, key, settings.model_name, version, dt.datetime.now(dt.UTC))
    if made is None:  # the keys were reloaded since this request was let in, without its key
        return None, None
    access, expires = made
    return f"{base}/{PAGE}?access={access}", expires.isoformat()


def _read(settings: Settings, version: int, name: str) -> bytes:
    version_dir = _version_dir(settings, version)
    try:
        return (version_dir / REPORT_PATH / name).read_bytes()
    except (FileNotFoundError, NotADirectoryError):  # also a version pruned just now
        files = report_files(version_dir)
        if not files:
            raise _no_report(settings, version) from None
        why = " (written without matplotlib, or before that plot was added)" if name.endswith(".png") else ""
        raise NotFound(f"the report of version {version} of {settings.model_name!r} has no {name}{why}; it has "
                       f"{', '.join(files)}") from None


@router.get("/model/versions/{version}/report", response_model=VersionReport, responses=problem_responses(404, 422),
            summary="The files of a version's evaluation report")
async def version_report(version: int, settings: SettingsDep, root: UrlRootDep, request: Request) -> VersionReport:
    listed = await asyncio.to_thread(_index, settings, version)
    base = report_url(root, version)
    link, expires = _browser_link(request, settings, base, version, listed)
    return VersionReport(model_name=settings.model_name, version=version,
                         files={name: f"{base}/{name}" for name in listed}, browser_link=link,
                         browser_link_expires_at=expires)


@files.get("/model/versions/{version}/report/{name}", response_class=Response,
            responses={200: {"content": {media_type: {} for media_type in _MEDIA_TYPES.values()}},
                       **problem_responses(404, 422)},
            summary="One file of a version's evaluation report",
            description="`report.html` (the report as one web page, with its plots: for a browser), "
                        "`report.md` (the figures as text), `metrics.json` (every figure), and the plots: "
                        "`histogram.png`, `roc.png`, `grid.png` (original, reconstruction and difference of test "
                        "images) and `misjudged.png` (the worst false alarms and missed anomalies).")
async def version_report_file(version: int, name: ReportFile, settings: SettingsDep, request: Request,
                              access: Annotated[str | None, Query(
                                  description="the token of a report link (`browser_link` of "
                                              "`/model/versions/{version}/report`), which opens this version's "
                                              "report files without an Authorization header")] = None) -> Response:
    # `access` is declared for the docs and the check of query parameters; the app's guard reads and checks it
    if name == PAGE:
        # The page's plots need the link that let the page in, if a link did (not a key, nor an open service)
        access = getattr(request.state, "report_access", None)
        plot_query = f"?access={access}" if access is not None else ""
        content = await asyncio.to_thread(_page, settings, version, plot_query)
        headers = {**_HEADERS, "Content-Security-Policy": CONTENT_SECURITY_POLICY, "Referrer-Policy": "no-referrer"}
    else:
        content, headers = await asyncio.to_thread(_read, settings, version, name), _HEADERS
    return Response(content, media_type=_MEDIA_TYPES[Path(name).suffix], headers=headers)
