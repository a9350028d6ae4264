"""The simulator clock: real time plus an offset the control API moves forward.

Every lifetime in the simulator (tokens, tickets, codes, license windows, order
timestamps) reads this clock, so a test can jump two hours ahead and see the same
expiries WeCom would produce, without sleeping and without touching the host clock.
"""

from __future__ import annotations

import threading
import time


class SimClock:
    """Returns simulator time: wall-clock time shifted by a monotonically growing offset.

    ``frozen``: time stands still at the (whole) second the clock was made and moves only
    by ``advance``, so which events share a second is up to the test, not the machine's
    speed (property tests replay the same steps and must see the same TimeStamps).
    """

    def __init__(self, offset: float = 0.0, *, frozen: bool = False) -> None:
        self._offset = float(offset)
        self._lock = threading.Lock()
        self._frozen_at = float(int(time.time())) if frozen else None

    def now(self) -> float:
        """Return the simulator time in Unix seconds (float)."""
        base = time.time() if self._frozen_at is None else self._frozen_at
        return base + self._offset

    def ts(self) -> int:
        """Return the simulator time in whole Unix seconds, the unit WeCom puts on the wire."""
        return int(self.now())

    @property
    def offset(self) -> float:
        return self._offset

    def advance(self, seconds: float) -> float:
        """Move the clock forward and return the new simulator time.

        Going backwards is refused: expiries are computed once and stored, so a
        clock that rewinds would resurrect codes WeCom would never accept again.
        """
        if seconds < 0:
            raise ValueError("the simulator clock only moves forward")
        with self._lock:
            self._offset += float(seconds)
        return self.now()
