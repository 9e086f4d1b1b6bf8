"""Normal images for recalibration from the service's results store: what a line actually sent.

The store keeps each scored image as the model saw it (28x28, framed and inverted as requested), so
these images need no preparation. The window's flagged results must all have been reviewed: a flag
nobody looked at may be a real defect, and calibrating on it would raise the threshold. Results
reviewed as anomalous are left out; everything else in the window counts as normal, including flags
reviewed as normal (false alarms), which a threshold calibrated on normals must see.

Read-only, with plain SQL on the columns the service writes (app/results.py): the training job never
imports the service, and never writes to its database.
"""

from __future__ import annotations

import datetime as dt
import sqlite3
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import quote

import numpy as np

from training.data import DataError

SIDE = 28


@dataclass(frozen=True)
class ResultWindow:
    """Which stored results to calibrate on: one model's, optionally one source's, in [since, until)."""
    model_name: str
    source: str | None = None
    since: dt.datetime | None = None
    until: dt.datetime | None = None

    def describe(self) -> str:
        parts = [f"model {self.model_name}"]
        if self.source is not None:
            parts.append(f"source {self.source}")
        if self.since is not None:
            parts.append(f"since {self.since.isoformat()}")
        if self.until is not None:
            parts.append(f"until {self.until.isoformat()}")
        return ", ".join(parts)

    def where(self) -> tuple[str, tuple]:
        conditions, parameters = ["model_name = ?"], [self.model_name]
        for condition, value in (("source = ?", self.source), ("created_at >= ?", _stored(self.since)),
                                 ("created_at < ?", _stored(self.until))):
            if value is not None:
                conditions.append(condition)
                parameters.append(value)
        return " AND ".join(conditions), tuple(parameters)


def _stored(moment: dt.datetime | None) -> str | None:
    """A time as the service stores `created_at` (UTC, microseconds), so that they compare as text."""
    return None if moment is None else moment.astimezone(dt.UTC).isoformat(timespec="microseconds")


def load_stored_normals(database: Path, window: ResultWindow) -> tuple[np.ndarray, dict]:
    """The window's normal images, uint8 [N, 28, 28], and counts of what was taken and left out (with the
    model versions that scored them, whose framing the caller should check).

    DataError when the file is not a results store, when the window has flagged results nobody
    reviewed, or when it holds no normal images.
    """
    _, images, counts = _read_window(database, window)
    if not images:
        raise DataError(f"no stored normal results in {database} ({window.describe()}; {counts['n_results']} "
                        f"results, {counts['n_reviewed_anomalous_left_out']} of them reviewed as anomalous)")
    return np.stack(images), counts


def load_stored_normals_by_source(database: Path, window: ResultWindow) -> tuple[dict[str, np.ndarray], dict]:
    """The window's normal images per source (results sent without one are not in it), and the counts of
    `load_stored_normals`, with `n_without_source`. DataError as there, and when no result has a source."""
    sources, images, counts = _read_window(database, window)
    by_source: dict[str, list[np.ndarray]] = {}
    for source, image in zip(sources, images, strict=True):
        if source is not None:
            by_source.setdefault(source, []).append(image)
    counts["n_without_source"] = sources.count(None)
    if not by_source:
        raise DataError(f"no stored normal results with a source in {database} ({window.describe()}; "
                        f"{counts['n_results']} results, {counts['n_without_source']} normal ones without a "
                        "source): only images sent with ?source= can calibrate a source's threshold")
    return {source: np.stack(found) for source, found in sorted(by_source.items())}, counts


def _read_window(database: Path, window: ResultWindow) -> tuple[list[str | None], list[np.ndarray], dict]:
    """The source and the 28x28 image of each normal result in the window, oldest first, and the counts."""
    connection = _open_read_only(database)
    try:
        # One snapshot for the check and the read: a flag the service stores meanwhile is in neither.
        connection.execute("BEGIN")
        where, parameters = window.where()
        counts = connection.execute(
            "SELECT COUNT(*), SUM(is_anomaly = 1 AND review IS NULL), SUM(review IS 'anomalous'), "
            f"SUM(is_anomaly = 1 AND review IS 'normal') FROM results WHERE {where}", parameters).fetchone()
        total, unreviewed_flags, reviewed_anomalous, false_alarms = (value or 0 for value in counts)
        if unreviewed_flags:
            raise DataError(
                f"the window ({window.describe()}) in {database} holds {unreviewed_flags} flagged "
                f"result{'s' * (unreviewed_flags != 1)} without a review: each may be a real defect, which would "
                "raise the threshold. Review them on the service's page /review-queue"
                f"{'' if window.source is None else '?source=' + quote(window.source, safe=':/@')} (or with GET "
                "/results?anomalous=true&review=none, then PUT /results/{id}/review), or choose a window "
                "without them (--since, --until, --source)")
        versions = sorted(v for (v,) in connection.execute(
            f"SELECT DISTINCT model_version FROM results WHERE {where}", parameters))
        rows = connection.execute(f"SELECT source, image FROM results WHERE {where} AND review IS NOT 'anomalous' "
                                  "ORDER BY seq", parameters).fetchall()
    except sqlite3.Error as error:
        raise DataError(f"cannot read the results store {database}: {error}") from error
    finally:
        connection.close()
    if any(len(image) != SIDE * SIDE for _, image in rows):
        raise DataError(f"{database} holds images that are not {SIDE}x{SIDE}: not a results store of this service")
    sources = [source for source, _ in rows]
    images = [np.frombuffer(image, np.uint8).reshape(SIDE, SIDE) for _, image in rows]
    return sources, images, {"n_results": total, "n_reviewed_anomalous_left_out": reviewed_anomalous,
                             "n_false_alarms_included": false_alarms, "model_versions": versions}


def _open_read_only(database: Path) -> sqlite3.Connection:
    if not database.is_file():
        raise DataError(f"results store not found: {database}")
    try:
        # mode=ro: this job must never change the service's data, even by accident.
        connection = sqlite3.connect(f"{database.resolve().as_uri()}?mode=ro", uri=True, timeout=30)
        columns = {row[1] for row in connection.execute("PRAGMA table_info(results)")}
    except sqlite3.Error as error:
        raise DataError(f"cannot open the results store {database}: {error}") from error
    missing = {"image", "model_name", "is_anomaly", "review", "created_at", "source"} - columns
    if missing:
        connection.close()
        raise DataError(f"{database} is not a results store of this service with reviews (no column "
                        f"{', '.join(sorted(missing))}); open it once with the current service first")
    return connection
