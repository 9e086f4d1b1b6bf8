"""Reading the API key file again when it changes, so that keys can be added, rotated or revoked without a
restart.

The file is checked as often as the model store is polled, and read once a change has stayed for one
check. A change that cannot be used (an unreadable file, no key, a key too short, a bad role) is logged
and refused, and the keys in use stay: a broken edit must neither lock every client out nor open the API.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable
from pathlib import Path

from app.auth import ApiKeys
from app.config import Settings

log = logging.getLogger(__name__)


class KeyFileWatcher:
    def __init__(self, settings: Settings, use: Callable[[ApiKeys], None]):
        if settings.api_keys_file is None:
            raise ValueError("no API key file to watch")
        self._settings, self._use = settings, use
        self._path: Path = settings.api_keys_file
        self._read = self._signature()  # the file as the keys in use were read from it
        self._changed: tuple | None = None  # a change seen at the last check, not read yet

    def _signature(self) -> tuple:
        """What changes when the file is edited or replaced."""
        try:
            status = self._path.stat()
        except OSError as error:
            return ("unreadable", error.errno)
        return status.st_mtime_ns, status.st_size, status.st_ino

    def check(self) -> bool:
        """Read the keys again if the file changed and has stayed so since the last check (so that a file
        being written is not read half-way); True if the service now uses new keys."""
        signature = self._signature()
        if signature == self._read or signature != self._changed:
            self._changed = None if signature == self._read else signature
            return False
        self._read, self._changed = signature, None
        try:
            keys = self._settings.api_key_values()  # VAE_API_KEYS' keys, and the file's
        except ValueError as error:  # never quotes a key
            log.error("the API key file %s changed, but cannot be used, so the keys in use stay: %s", self._path,
                      error)
            return False
        self._use(ApiKeys(keys))
        log.info("API keys read again from %s: %d key%s (%s)", self._path, len(keys), "s" * (len(keys) != 1),
                 ", ".join(sorted({f"{key.name} ({key.role})" for key in keys})))
        return True

    async def watch_forever(self, interval: float) -> None:
        while True:
            await asyncio.sleep(interval)
            try:
                await asyncio.to_thread(self.check)  # a file on a slow or network disk must not stall requests
            except Exception:  # the watcher must outlive anything the file system does
                log.exception("checking the API key file %s failed", self._path)
