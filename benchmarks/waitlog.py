"""An append-only log that one thread fills and another waits on (AMI events, panels' frames)."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from typing import Any, Generic, TypeVar

T = TypeVar("T")


class WaitableLog(Generic[T]):
    """``mark()`` then ``since(mark)`` cut out what one run added; ``wait_for`` waits for something to arrive."""

    def __init__(self) -> None:
        self._items: list[T] = []
        self._changed = threading.Condition()

    def append(self, item: T) -> None:
        with self._changed:
            self._items.append(item)
            self._changed.notify_all()

    def mark(self) -> int:
        with self._changed:
            return len(self._items)

    def since(self, mark: int = 0) -> list[T]:
        with self._changed:
            return self._items[mark:]

    def wait_for(self, find: Callable[[list[T]], Any], timeout: float, mark: int = 0) -> Any:
        """The first truthy ``find(items since mark)``, or None after ``timeout`` seconds."""
        deadline = time.monotonic() + timeout
        with self._changed:
            while not (found := find(self._items[mark:])):
                left = deadline - time.monotonic()
                if left <= 0:
                    return None
                self._changed.wait(min(left, 0.5))
            return found
