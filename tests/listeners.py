"""A progress listener for tests (:mod:`mixedbridge.progress`): records every report and asks
to stop once it has seen ``stop_after`` of them (never, by default)."""
from __future__ import annotations


class Listener:
    def __init__(self, stop_after: int | None = None) -> None:
        self.seen: list[tuple[int, int | None, str]] = []
        self.stop_after = stop_after

    def progress(self, done: int, total: int | None, stage: str) -> None:
        self.seen.append((done, total, stage))

    def cancelled(self) -> bool:
        return self.stop_after is not None and len(self.seen) >= self.stop_after
