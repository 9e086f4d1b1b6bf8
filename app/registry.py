"""Which model version is served: initial load, polling for new versions, atomic hot swap.

A candidate is loaded and self-checked in a worker thread while the current version keeps serving;
only a candidate that passes replaces it (one reference assignment, so no request ever fails).
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable
from pathlib import Path

from app.config import Settings
from app.detector import Detector
from app.errors import ModelLoadError, NotReady
from training.store import list_versions

log = logging.getLogger(__name__)


def _what_the_store_holds(model_dir: Path) -> str:
    """A hint for a model folder that is not there, from what is: the likely slips are a typo in
    VAE_MODEL_NAME, a model's own folder given as VAE_MODEL_STORE, and a relative store looked for from
    another working directory."""
    store = model_dir.parent
    if not model_dir.is_absolute() and not store.is_dir():
        return f" (relative to the working directory, {Path.cwd()})"
    if versions := list_versions(store):
        shown = ", ".join(map(str, versions)) if len(versions) <= 5 else f"{versions[0]} to {versions[-1]}"
        return (f"; VAE_MODEL_STORE is a model's folder itself (it holds versions {shown}): set it to "
                f"{store.parent} and VAE_MODEL_NAME to {store.name}")
    models = sorted(entry.name for entry in store.iterdir() if list_versions(entry)) if store.is_dir() else []
    return f"; the models in {store} are {', '.join(models[:10])}" if models else ""


class ModelRegistry:
    def __init__(self, settings: Settings, loader: Callable[..., Detector] = Detector.load,
                 on_swap: Callable[[Detector], None] | None = None):
        self._settings = settings
        self._loader = loader
        self._on_swap = on_swap
        self._current: Detector | None = None
        self.rejected_versions: dict[int, str] = {}  # version -> why it was skipped
        self.last_error: str | None = None

    @property
    def current(self) -> Detector:
        if self._current is None:
            raise NotReady(self.last_error or "the model is still loading")
        return self._current

    @property
    def ready(self) -> bool:
        return self._current is not None

    def _candidates(self) -> list[int]:
        """Versions worth trying, best first: the pinned one, or newer-than-current, newest first."""
        pinned = self._settings.model_version
        available = list_versions(self._settings.model_dir)
        if pinned is not None:
            usable = pinned in available and pinned not in self.rejected_versions
            return [pinned] if usable and self._current is None else []
        floor = self._current.version if self._current else 0
        return [v for v in reversed(available) if v > floor and v not in self.rejected_versions]

    def _load_checked(self, version: int) -> Detector:
        detector = self._loader(self._settings.model_dir / str(version))
        detector.self_check()
        return detector

    async def refresh(self) -> bool:
        """Load the best available version if it beats the current one. True if a swap happened."""
        candidates = self._candidates()
        if not candidates and self._current is None:
            self._nothing_to_serve()
        for version in candidates:
            try:
                detector = await asyncio.to_thread(self._load_checked, version)
            except ModelLoadError as error:
                self._reject(version, str(error))
                log.error("skipping model version %d: %s", version, error)
                continue
            except Exception as error:  # unforeseen: still refused once, not retried at every poll
                self._reject(version, f"{self._settings.model_dir / str(version)}: cannot be served: {error!r}")
                log.exception("skipping model version %d", version)
                continue
            previous = self._current
            self._current = detector
            log.info("serving %s version %d (was %s)", detector.name, detector.version,
                     previous.version if previous else "none")
            if self._on_swap:
                self._on_swap(detector)
            return True
        return False

    def _nothing_to_serve(self) -> None:
        model_dir, pinned = self._settings.model_dir, self._settings.model_version
        if not model_dir.is_dir():  # a typo in VAE_MODEL_STORE or VAE_MODEL_NAME, or a volume not mounted
            try:
                hint = _what_the_store_holds(model_dir)
            except OSError:  # a store that cannot be listed gives no hint, but must not stop the polling
                hint = ""
            missing = f"{model_dir} does not exist or is not a folder{hint}"
        elif pinned is not None:
            missing = f"version {pinned} of {model_dir} is not available"
        else:
            missing = f"no usable model version in {model_dir}"
        rejected = "; ".join(f"version {v}: {why}" for v, why in sorted(self.rejected_versions.items()))
        reason = f"{missing} (rejected: {rejected})" if rejected else missing
        if reason != self.last_error:  # once, not at every poll: /readyz tells it as long as it lasts
            log.warning("no model to serve: %s. /readyz answers 503 until there is one (VAE_MODEL_STORE, "
                        "VAE_MODEL_NAME, VAE_MODEL_VERSION); the store is checked every VAE_POLL_INTERVAL_S",
                        reason)
        self.last_error = reason

    def _reject(self, version: int, reason: str) -> None:
        self.rejected_versions[version] = reason
        self.last_error = reason

    async def try_refresh(self) -> None:
        """`refresh`, with any failure logged: a broken store must never kill the poller or the startup."""
        try:
            await self.refresh()
        except Exception:
            log.exception("model refresh failed")

    async def poll_forever(self) -> None:
        interval = self._settings.poll_interval_s
        while True:
            await self.try_refresh()
            if interval <= 0 and self.ready:
                return
            await asyncio.sleep(interval if interval > 0 else 1.0)
