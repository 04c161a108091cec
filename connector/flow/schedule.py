"""[pure] Which turns of the fleet's seats are open under a learned budget (SPEC §2.8, §7).

The configured budget of N calls per window is laid out as N seats (:mod:`connector.flow.fleet`),
the same on every replica; each turn of a seat belongs to one partition on it. A budget learned
from throttle answers never lays the seats out anew (replicas that learned different budgets
would disagree on the layout, and their turns would overlap): it only **closes** turns of that
layout, by a rule every replica with the same budget applies alike. A replica therefore uses a
subset of what the configured layout gives it, whatever it learned, so the fleet never sends
more than the configured budget; and once every replica holds the same learned budget, the
fleet holds that one.

The rule: only every ``stretch``-th turn is open; of those, consecutive groups of ``block`` open
turns form a step, and in each step ``open`` of the ``seats`` seats are open, a window that
rotates by ``open`` seats a step. So every open turn has exactly ``open`` seats open, every seat is
open in ``open / seats`` of the steps, and since ``block`` is a multiple of every seat's partition
count and ``stretch`` is prime to each, every partition of an open seat gets its turns in each
open step: none is starved."""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from collections.abc import Iterable

__all__ = ["FULL", "Schedule", "thinned"]


@dataclass(frozen=True, slots=True)
class Schedule:
    """Open turns of a thinned layout of ``seats`` seats (``seats == 0``: every turn is open)."""

    seats: int = 0
    open: int = 0  # seats open in each open turn
    stretch: int = 1  # only turns that are a multiple of it are open
    block: int = 1  # open turns per step of the rotation

    @property
    def full(self) -> bool:
        """Whether nothing is closed."""
        return self.seats == 0 or (self.open >= self.seats and self.stretch == 1)

    @property
    def density(self) -> float:
        """The part of each seat's turns that are open."""
        return 1.0 if self.full else self.open / self.seats / self.stretch

    def opens(self, seat: int, turn: int) -> bool:
        """Whether ``turn`` of ``seat`` is open."""
        if self.full:
            return True
        if turn % self.stretch:
            return False
        step = turn // self.stretch // self.block
        return (seat - step * self.open) % self.seats < self.open

    @property
    def horizon(self) -> int:
        """Turns within which every turn position of every seat comes open again."""
        if self.full:
            return 1
        steps = math.ceil(self.seats / max(1, self.open)) + 1
        return self.stretch * self.block * steps


FULL = Schedule()


def thinned(
    seats: int,
    members: Iterable[int],
    rate: tuple[int, float],
    *,
    window: float,
    turn: float,
    counted_within: float,
) -> Schedule:
    """The schedule that keeps ``rate`` (at most ``calls`` in any ``seconds``) on a layout of
    ``seats`` seats whose partition counts are ``members``, with turns of ``turn`` seconds whose
    calls LeadSquared counts within ``counted_within`` seconds of the turn's start. Calls of
    turns ``d`` apart are counted at least ``d * turn - counted_within`` apart, so a window of
    ``seconds`` sees the calls of at most ``k`` consecutive turns (``k = 1`` when ``seconds`` is
    at most the configured ``window``, which turns are longer than)."""
    calls, seconds = rate
    counts = set(members) or {1}
    block = math.lcm(*counts)
    if seconds <= window:
        return Schedule(seats, min(calls, seats), 1, block)
    k = math.floor((seconds + counted_within) / turn) + 1
    best = Schedule(seats, 0, 1, block)
    for stretch in range(1, k + 1):
        if any(math.gcd(stretch, count) != 1 for count in counts):
            continue
        open_ = min(seats, calls // math.ceil(k / stretch))
        if open_ / stretch > best.open / best.stretch:
            best = Schedule(seats, open_, stretch, block)
    if best.open == 0:  # fewer calls than turns in a window: one seat every few turns
        stretch = next(s for s in range(k, 2 * k + max(counts) + 2) if _prime_to(s, counts))
        best = Schedule(seats, min(seats, calls), stretch, block)
    return best


def _prime_to(number: int, counts: set[int]) -> bool:
    return all(math.gcd(number, count) == 1 for count in counts)
