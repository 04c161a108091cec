"""[pure] What the loop reports, on its own schedule: the :class:`~connector.flow.observe.Snapshot`
the health port serves (replaced about once a second) and the progress line (every
``progress_interval``), each with the fields of the loop's participants."""

from __future__ import annotations

from typing import TYPE_CHECKING

from connector.flow.observe import Snapshot, account_view, not_ready, take_snapshot
from connector.flow.progress import Progress, progress_fields, route_backlog
from connector.logs import get_logger

if TYPE_CHECKING:
    from connector.flow.participant import Loop, Participant
    from connector.flow.ports import Input, Output

__all__ = ["Reports"]

_log = get_logger(__name__)
_PUBLISH_S = 1.0  # how often the snapshot is replaced


class Reports:
    """The snapshot and the progress line of one loop."""

    def __init__(
        self, loop: Loop, participants: Participant, output: Output, progress_interval: float
    ) -> None:
        self._outcomes, self._accounts, self._routes = loop.outcomes, loop.accounts, loop.route_of
        self._participants, self._output, self._clock = participants, output, loop.clock
        self._progress = Progress(progress_interval, loop.clock())
        self._next_publish = 0.0
        self.snapshot = Snapshot()  # the latest; the health port's thread only reads it

    def turn(self, source: Input, *, paused: bool, stopping: bool, joined: bool) -> None:
        """Log a progress line and replace the snapshot, each when due."""
        now = self._clock()
        if now - self._progress.at >= self._progress.interval:
            self._log_progress(source, now)
        if now >= self._next_publish:
            self._publish(source, now, paused=paused, stopping=stopping, joined=joined)

    def _publish(
        self, source: Input, now: float, *, paused: bool, stopping: bool, joined: bool
    ) -> None:
        self._next_publish = now + _PUBLISH_S
        accounts = self._accounts.values()
        snapshot = take_snapshot(
            self._outcomes,
            [account_view(account, now) for account in accounts],
            lag=sum(source.lag().values()),
            paused=paused,
            not_ready=not_ready(
                stopping=stopping,
                joined=joined,
                results_delayed=self._output.delayed,
                accounts=accounts,
                reasons=self._participants.not_ready(),
            ),
        )
        self.snapshot = self._participants.snapshot(snapshot)

    def _log_progress(self, source: Input, now: float) -> None:
        """See :func:`connector.flow.progress.progress_fields`."""
        backlog = route_backlog(source.lag(), self._outcomes.offsets, self._routes)
        fields = progress_fields(
            self._outcomes.tally,
            self._progress,
            now,
            in_flight=self._outcomes.pending(),
            backlog=backlog,
            accounts=self._accounts,
        )
        _log.info("progress", **fields, **self._participants.progress())
