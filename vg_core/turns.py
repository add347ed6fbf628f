"""A first-come, first-served queue for the page's training slots, shared by every visitor of one server."""

from __future__ import annotations

import itertools
import threading
import time

ABANDONED_S = 30.0  # a waiting ticket not renewed for this long belongs to a visitor who left


class TrainingQueue:
    """`slots` trainings at once; the others wait in arrival order and can be told how many are ahead.

    A visitor takes a ticket (`join`), calls `turn` while waiting (which also renews the ticket), trains once
    `turn` is True, and `leave`s when done or gone. A waiting ticket not renewed for ABANDONED_S is dropped.
    """

    def __init__(self, slots: int) -> None:
        self.slots = slots
        self.waiting: dict[int, float] = {}  # ticket -> last renewed (monotonic), in arrival order
        self.training: set[int] = set()
        self.tickets = itertools.count(1)
        self.lock = threading.Lock()

    def join(self) -> int:
        with self.lock:
            ticket = next(self.tickets)
            self.waiting[ticket] = time.monotonic()
            return ticket

    def turn(self, ticket: int) -> bool:
        """True (and the slot is taken) when `ticket` is first in line and a slot is free."""
        with self.lock:
            now = time.monotonic()
            for other, renewed in list(self.waiting.items()):
                if other != ticket and now - renewed > ABANDONED_S:
                    del self.waiting[other]
            self.waiting[ticket] = now
            if len(self.training) < self.slots and next(iter(self.waiting)) == ticket:
                del self.waiting[ticket]
                self.training.add(ticket)
                return True
            return False

    def ahead(self, ticket: int) -> int:
        """Visitors before `ticket`: those training and those waiting longer."""
        with self.lock:
            order = list(self.waiting)
            return len(self.training) + (order.index(ticket) if ticket in order else 0)

    def leave(self, ticket: int) -> None:
        with self.lock:
            self.waiting.pop(ticket, None)
            self.training.discard(ticket)


def ahead_text(count: int) -> str:
    """'Waiting for the training slot: 2 visitors ahead of you.'"""
    return f"Waiting for the training slot: {count} visitor{'s' if count != 1 else ''} ahead of you."
