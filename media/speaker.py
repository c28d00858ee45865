"""Active speaker detection from the RFC 6464 audio level header extension (no decoding).

Each audio packet carries the sender's level in -dBov (0 loud, 127 silent). The detector
keeps an exponential moving average of ``127 - level`` per participant and names the
loudest one the speaker, with a threshold, a margin (hysteresis) and a minimum hold time
so the choice does not flicker between two people talking at once.
"""

from __future__ import annotations

from dataclasses import dataclass

STALE_AFTER = 1.0
"""Seconds after which a participant's last level no longer counts (muted, stopped)."""

EVALUATE_EVERY = 0.1


@dataclass(slots=True)
class _Level:
    smoothed: float
    updated: float


class ActiveSpeakerDetector:
    """Dominant speaker of one conference."""

    def __init__(self, *, threshold: float, margin: float, hold: float, smoothing: float) -> None:
        self._threshold = threshold
        self._margin = margin
        self._hold = hold
        self._smoothing = smoothing
        self._levels: dict[str, _Level] = {}
        self._speaker: str | None = None
        self._changed_at: float | None = None
        self._evaluated_at: float | None = None

    @property
    def speaker(self) -> str | None:
        return self._speaker

    def levels(self, now: float) -> dict[str, float]:
        """Current smoothed activity (0..127) per participant."""
        return {pid: self._current(level, now) for pid, level in self._levels.items()}

    def add(self, participant: str, level: int, now: float) -> bool:
        """Feed one packet's level; True if the speaker changed (read :attr:`speaker`)."""
        activity = 127.0 - max(0, min(127, level))
        entry = self._levels.get(participant)
        if entry is None or now - entry.updated > STALE_AFTER:
            self._levels[participant] = _Level(activity, now)
        else:
            entry.smoothed += self._smoothing * (activity - entry.smoothed)
            entry.updated = now
        if self._evaluated_at is not None and now - self._evaluated_at < EVALUATE_EVERY:
            return False
        return self.evaluate(now)

    def remove(self, participant: str, now: float) -> bool:
        """Forget a participant (left or muted); True if the speaker changed."""
        self._levels.pop(participant, None)
        if self._speaker == participant:
            self._speaker = None
            self._changed_at = None
            self.evaluate(now)
            return True
        return False

    def evaluate(self, now: float) -> bool:
        """Re-elect the speaker; True if it changed."""
        self._evaluated_at = now
        best: str | None = None
        best_level = self._threshold
        for pid, entry in self._levels.items():
            value = self._current(entry, now)
            if value >= best_level:
                best, best_level = pid, value
        if best is None or best == self._speaker:
            return False
        if self._speaker is not None:
            if self._changed_at is not None and now - self._changed_at < self._hold:
                return False
            current = self._levels.get(self._speaker)
            if current is not None and best_level < self._current(current, now) + self._margin:
                return False
        self._speaker = best
        self._changed_at = now
        return True

    @staticmethod
    def _current(entry: _Level, now: float) -> float:
        return 0.0 if now - entry.updated > STALE_AFTER else entry.smoothed
