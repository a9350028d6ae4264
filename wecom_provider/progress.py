"""Progress for long commands: a bar on a terminal, plain lines in logs and CI."""

from __future__ import annotations

import time
from typing import TextIO


class Progress:
    """Report ``done`` of ``total`` for ``label``; redraws at most ~10 times a second."""

    def __init__(self, stream: TextIO, total: int, label: str, *, width: int = 30) -> None:
        self.stream = stream
        self.total = max(total, 0)
        self.label = label
        self.width = width
        self.done = 0
        self.tty = bool(getattr(stream, "isatty", lambda: False)())
        self._last_draw = 0.0
        self._last_line_percent = -1

    def advance(self, count: int = 1) -> None:
        self.done += count
        now = time.monotonic()
        if self.tty:
            if now - self._last_draw >= 0.1 or self.done >= self.total:
                self._draw()
                self._last_draw = now
            return
        # Not a terminal: a line per 10 % step, so logs stay readable.
        percent = 100 if not self.total else min(100, self.done * 100 // self.total)
        if percent // 10 != self._last_line_percent // 10:
            self._last_line_percent = percent
            self.stream.write(f"{self.label}: {self.done}/{self.total} ({percent}%)\n")
            self.stream.flush()

    def _draw(self) -> None:
        fraction = 1.0 if not self.total else min(1.0, self.done / self.total)
        filled = int(self.width * fraction)
        bar = "#" * filled + "-" * (self.width - filled)
        self.stream.write(f"\r{self.label} [{bar}] {self.done}/{self.total} {fraction:4.0%}")
        self.stream.flush()

    def close(self) -> None:
        if self.tty:
            self._draw()
            self.stream.write("\n")
        elif self._last_line_percent < 100:
            self.stream.write(f"{self.label}: {self.done}/{self.total} (done)\n")
        self.stream.flush()

    def __enter__(self) -> Progress:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()
