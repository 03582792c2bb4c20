"""Group commit: a reactor turn's items wait for one commit at its end, then go its way."""

from __future__ import annotations

from twisted.internet.defer import Deferred
from twisted.internet.task import Clock

from pxed.groupcommit import GroupCommit


class Books:
    """A commit that records each batch it was asked for and what came of it."""

    def __init__(self) -> None:
        self.commits: list[list[str]] = []
        self.released: list[tuple[list[str], int]] = []
        self.dropped: list[tuple[list[str], str]] = []
        self.fail = False
        self.later: Deferred[int] | None = None

    def commit(self, batch: list[str]) -> int | Deferred[int]:
        self.commits.append(batch)
        if self.fail:
            raise OSError("disk full")
        return self.later if self.later is not None else len(self.commits)

    def turns(self, clock: Clock, limit: int | None = None) -> GroupCommit[str, int]:
        return GroupCommit(
            clock,
            self.commit,
            lambda batch, result: self.released.append((batch, result)),
            lambda batch, failure: self.dropped.append((batch, str(failure.value))),
            limit,
        )


def test_a_turns_items_wait_for_one_commit_at_its_end():
    clock, books = Clock(), Books()
    turns = books.turns(clock)
    turns.hold("a")
    turns.hold("b")
    assert books.commits == [] and books.released == []
    clock.advance(0)
    assert books.commits == [["a", "b"]] and books.released == [(["a", "b"], 1)]


def test_a_failed_commit_hands_every_item_of_its_batch_to_the_failure_path():
    clock, books = Clock(), Books()
    turns = books.turns(clock)
    books.fail = True
    turns.hold("a")
    turns.hold("b")
    clock.advance(0)
    assert books.released == [] and books.dropped == [(["a", "b"], "disk full")]


def test_past_the_limit_a_batch_commits_at_once_and_the_turn_still_ends_with_a_commit():
    clock, books = Clock(), Books()
    turns = books.turns(clock, limit=2)
    for item in "abc":
        turns.hold(item)
    assert books.commits == [["a", "b"]]
    clock.advance(0)
    assert books.commits == [["a", "b"], ["c"]]


def test_a_turn_that_only_wrote_still_ends_with_a_commit():
    clock, books = Clock(), Books()
    books.turns(clock).wrote()
    clock.advance(0)
    assert books.commits == [[]]


def test_a_commit_that_returns_a_deferred_releases_when_it_fires_and_the_next_turn_gathers():
    clock, books = Clock(), Books()
    turns = books.turns(clock)
    books.later = Deferred()
    turns.hold("a")
    clock.advance(0)
    turns.hold("b")  # the reactor goes on while the first commit runs
    assert books.released == []
    books.later.callback(7)
    assert books.released == [(["a"], 7)]


def test_stop_commits_what_is_held_and_cancels_the_end_of_turn():
    clock, books = Clock(), Books()
    turns = books.turns(clock)
    turns.hold("a")
    turns.stop()
    assert books.commits == [["a"]] and clock.getDelayedCalls() == []
