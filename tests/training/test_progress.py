"""How far a long job has got: a line that updates on a terminal, a line every ten seconds in a log."""

import sys

import pytest

from training.progress import Progress


class Clock:
    def __init__(self) -> None:
        self.now = 0.0

    def __call__(self) -> float:
        return self.now


def _run(monkeypatch, capsys, terminal: bool, steps: list[tuple[float, int]], total: int = 100) -> str:
    monkeypatch.setattr(sys.stderr, "isatty", lambda: terminal)
    clock = Clock()
    shown = Progress(total, "images", "read", clock=clock)
    for at, done in steps:
        clock.now = at
        shown.advance(done)
    return capsys.readouterr().err


def test_in_a_log_a_line_every_ten_seconds_and_the_last_one(monkeypatch, capsys):
    steps = [(second, second * 4) for second in range(26)]  # 100 images in 25 s
    assert _run(monkeypatch, capsys, False, steps) == ("read 40/100 images\nread 80/100 images\n"
                                                       "read 100/100 images\n")


def test_a_short_job_prints_its_last_line_only(monkeypatch, capsys):
    assert _run(monkeypatch, capsys, False, [(0.0, 50), (3.0, 100)]) == "read 100/100 images\n"


def test_on_a_terminal_one_line_updates_in_place(monkeypatch, capsys):
    steps = [(0.0, 10), (0.1, 20), (0.3, 30), (0.4, 40), (0.6, 100)]
    assert _run(monkeypatch, capsys, True, steps) == "\rread 30/100 images\rread 100/100 images\n"


@pytest.mark.parametrize(("total", "enabled"), [(0, True), (100, False)])
def test_nothing_to_count_or_not_asked_prints_nothing(monkeypatch, capsys, total, enabled):
    monkeypatch.setattr(sys.stderr, "isatty", lambda: False)
    shown = Progress(total, "images", "read", enabled=enabled)
    shown.advance(total)
    assert capsys.readouterr().err == ""
