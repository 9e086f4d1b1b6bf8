"""app/key_file.py: the key file is read again once a change has settled, and a bad change is refused."""

import os

from app.auth import ApiKeys
from app.config import Settings
from app.key_file import KeyFileWatcher

KEY, OTHER_KEY = "first-key-0123456789abcdef", "second-key-0123456789abcdef"


def _watcher(tmp_path, text: str):
    key_file = tmp_path / "keys"
    key_file.write_text(text)
    used: list[ApiKeys] = []
    return key_file, used, KeyFileWatcher(Settings(api_keys_file=key_file), used.append)


def _touch(path, text: str, seconds: int) -> None:
    path.write_text(text)
    stamp = path.stat().st_mtime_ns + seconds * 1_000_000_000
    os.utime(path, ns=(stamp, stamp))


def test_a_change_is_read_once_it_has_stayed_for_one_check(tmp_path):
    key_file, used, watcher = _watcher(tmp_path, f"anna {KEY}\n")
    assert watcher.check() is False and used == []  # unchanged

    _touch(key_file, f"ben {OTHER_KEY} read\n", seconds=2)
    assert watcher.check() is False  # just changed: it may still be being written
    _touch(key_file, f"ben {OTHER_KEY} read\ncarl {KEY} review\n", seconds=4)  # it was
    assert watcher.check() is False
    assert watcher.check() is True  # settled: read
    keys = used[-1]
    assert keys.identify(OTHER_KEY).role == "read" and keys.identify(KEY).name == "carl"
    assert watcher.check() is False and len(used) == 1  # read once


def test_a_change_that_cannot_be_used_is_refused_and_not_retried_until_the_next_change(tmp_path, caplog):
    key_file, used, watcher = _watcher(tmp_path, f"anna {KEY}\n")
    _touch(key_file, "anna short\n", seconds=2)
    assert [watcher.check(), watcher.check(), watcher.check()] == [False, False, False]
    assert used == [] and caplog.text.count("cannot be used, so the keys in use stay") == 1
    _touch(key_file, f"anna {OTHER_KEY}\n", seconds=4)  # mended
    assert [watcher.check(), watcher.check()] == [False, True]
    assert used[-1].identify(OTHER_KEY).name == "anna"
