"""Host install states: transitions, the loop breaker, persistence across restarts and processes."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from pxed.provisioning.lifecycle import Lifecycle, State

MAC = "52:54:00:12:34:56"


@pytest.fixture
def states(tmp_path: Path) -> Lifecycle:
    return Lifecycle.open(tmp_path / "state")


def test_an_unseen_host_is_ready(states: Lifecycle):
    assert states.get(MAC).state is State.READY
    assert states.all() == []


def test_the_happy_path_ready_booting_installing_installed(states: Lifecycle):
    assert states.seen(MAC, "dhcp", 10.0).state is State.BOOTING
    assert states.seen(MAC, "tftp", 11.0).since == 10.0  # still booting since the first sighting
    installing = states.kickstart_fetched(MAC, 20.0, limit=3, window=100)
    assert (installing.state, installing.fetches) == (State.INSTALLING, (20.0,))
    installed = states.done(MAC, 30.0)
    assert (installed.state, installed.since, installed.fetches) == (State.INSTALLED, 30.0, ())


def test_an_installed_host_seen_again_stays_installed(states: Lifecycle):
    states.done(MAC, 1.0)
    assert states.seen(MAC, "dhcp", 2.0).state is State.INSTALLED


def test_a_failed_callback_fails_and_the_next_boot_is_booting_again(states: Lifecycle):
    states.kickstart_fetched(MAC, 1.0, limit=3, window=100)
    assert states.failed(MAC, 2.0).state is State.FAILED
    assert states.seen(MAC, "dhcp", 3.0).state is State.BOOTING


@pytest.mark.parametrize("source", ["tftp", "http"])
def test_an_anonymous_config_fetch_never_moves_a_host_out_of_failed_or_installed(
    states: Lifecycle, source: str
):
    """Issue 14: anyone can name a MAC in a TFTP or HTTP request; only its DHCP is the host."""
    states.failed(MAC, 1.0)
    assert states.seen(MAC, source, 2.0).state is State.FAILED
    states.done(MAC, 3.0)
    assert states.seen(MAC, source, 4.0).state is State.INSTALLED
    assert states.seen("52:54:00:00:00:99", source, 5.0).state is State.BOOTING  # from ready


def test_more_fetches_than_the_limit_within_the_window_is_looping(states: Lifecycle):
    for now in (1.0, 2.0, 3.0):
        assert states.kickstart_fetched(MAC, now, limit=3, window=100).state is State.INSTALLING
    looping = states.kickstart_fetched(MAC, 4.0, limit=3, window=100)
    assert looping.state is State.LOOPING
    assert states.kickstart_fetched(MAC, 5.0, limit=3, window=100).state is State.LOOPING
    assert states.seen(MAC, "dhcp", 6.0).state is State.LOOPING


def test_fetches_older_than_the_window_do_not_count(states: Lifecycle):
    for now in (1.0, 2.0, 3.0):
        states.kickstart_fetched(MAC, now, limit=3, window=10)
    after = states.kickstart_fetched(MAC, 12.5, limit=3, window=10)
    assert (after.state, after.fetches) == (State.INSTALLING, (3.0, 12.5))


def test_a_done_callback_resets_the_loop_count(states: Lifecycle):
    for now in (1.0, 2.0, 3.0):
        states.kickstart_fetched(MAC, now, limit=3, window=100)
    states.done(MAC, 4.0)
    assert states.kickstart_fetched(MAC, 5.0, limit=3, window=100).state is State.INSTALLING


def test_rearm_makes_a_looping_host_ready_with_no_fetches(states: Lifecycle):
    for now in (1.0, 2.0, 3.0, 4.0):
        states.kickstart_fetched(MAC, now, limit=3, window=100)
    rearmed = states.rearm(MAC, 5.0)
    assert (rearmed.state, rearmed.fetches, rearmed.source) == (State.READY, (), "rearm")


def test_states_survive_a_restart(tmp_path: Path):
    first = Lifecycle.open(tmp_path)
    first.done(MAC, 1.0)
    first.close()
    again = Lifecycle.open(tmp_path)
    assert again.get(MAC).state is State.INSTALLED


def test_a_second_process_rearming_is_seen_by_the_first_not_clobbered(tmp_path: Path):
    """The daemon and `pxed hosts rearm` share the file: each change reads the row first."""
    daemon, operator = Lifecycle.open(tmp_path), Lifecycle.open(tmp_path)
    for now in (1.0, 2.0, 3.0, 4.0):
        daemon.kickstart_fetched(MAC, now, limit=3, window=100)
    operator.rearm(MAC, 5.0)
    assert daemon.kickstart_fetched(MAC, 6.0, limit=3, window=100).state is State.INSTALLING
    assert [s.state for s in operator.all()] == [State.INSTALLING]


def _open_files(folder: Path) -> list[str]:
    fds = Path("/proc/self/fd")
    names = []
    for fd in fds.iterdir():
        try:
            names.append(str(fd.readlink()))
        except OSError:
            continue
    return [name for name in names if name.startswith(str(folder))]


def test_open_holds_no_connection_so_none_is_carried_across_twistds_fork(tmp_path: Path):
    """twistd builds services (Lifecycle.open) before it daemonizes; SQLite locks don't follow."""
    states = Lifecycle.open(tmp_path)
    assert (tmp_path / "hosts.sqlite3").exists()
    assert _open_files(tmp_path) == []
    states.seen(MAC, "dhcp", 1.0)
    assert _open_files(tmp_path) != []
    states.close()
    assert _open_files(tmp_path) == []


def test_a_forked_child_uses_its_own_connection(tmp_path: Path):
    """A connection opened before a fork is not used by the child (its locks stay behind)."""
    states = Lifecycle.open(tmp_path)
    states.seen(MAC, "dhcp", 1.0)
    pid = os.fork()
    if pid == 0:  # the child: a daemon after twistd's fork
        code = 1
        try:
            before = states._opened
            states.done(MAC, 2.0)
            code = 0 if states._opened is not before else 2
        finally:
            os._exit(code)
    _, status = os.waitpid(pid, 0)
    assert os.waitstatus_to_exitcode(status) == 0
    assert states.get(MAC).state is State.INSTALLED


def test_a_failed_callback_does_not_end_looping(states: Lifecycle):
    """failed -> booting -> install again would restart the loop the breaker stopped."""
    for now in (1.0, 2.0, 3.0, 4.0):
        states.kickstart_fetched(MAC, now, limit=3, window=100)
    assert states.failed(MAC, 5.0).state is State.LOOPING
    assert states.seen(MAC, "dhcp", 6.0).state is State.LOOPING


def test_a_database_from_before_install_generations_opens_and_keeps_its_rows(tmp_path):
    """The generation column is added in place; old rows start at 0 (their tokens stay valid)."""
    import sqlite3

    from pxed.provisioning.lifecycle import DATABASE_NAME

    old = sqlite3.connect(tmp_path / DATABASE_NAME)
    old.execute(
        "CREATE TABLE hosts (mac TEXT PRIMARY KEY, state TEXT NOT NULL,"
        " since REAL NOT NULL, source TEXT NOT NULL, fetches TEXT NOT NULL)"
    )
    old.execute("INSERT INTO hosts VALUES ('52:54:00:12:34:56', 'installing', 5.0, 'k', '[5.0]')")
    old.commit()
    old.close()
    lifecycle = Lifecycle.open(tmp_path)
    state = lifecycle.get("52:54:00:12:34:56")
    assert (state.state, state.generation) == (State.INSTALLING, 0)
    assert lifecycle.done("52:54:00:12:34:56", 6.0).generation == 1


def _statements(states: Lifecycle) -> list[str]:
    """Every statement the lifecycle's connection runs from now on."""
    seen: list[str] = []
    states._conn.set_trace_callback(seen.append)
    return seen


@pytest.mark.parametrize("end", ["done", "failed", "rearm"])
def test_what_ends_an_install_is_fsynced_before_it_returns(states: Lifecycle, end: str):
    states.kickstart_fetched(MAC, 1.0, 3, 3600)
    statements = _statements(states)
    getattr(states, end)(MAC, 2.0)
    assert statements[0] == "PRAGMA synchronous=FULL"
    assert states._conn.execute("PRAGMA synchronous").fetchone() == (2,)  # FULL


def test_a_boot_on_its_way_commits_without_waiting_for_the_disk(states: Lifecycle):
    statements = _statements(states)
    states.seen(MAC, "dhcp", 1.0)
    first = statements.index("PRAGMA synchronous=NORMAL")
    assert statements[first + 1] == "BEGIN IMMEDIATE"
    states.kickstart_fetched(MAC, 2.0, 3, 3600)
    assert "PRAGMA synchronous=NORMAL" not in statements[first + 1 :]  # kept while it fits
    assert states._conn.execute("PRAGMA synchronous").fetchone() == (1,)  # NORMAL


def test_a_change_committed_without_fsync_is_seen_by_another_process(tmp_path: Path):
    """What a kill -9 leaves: the commit is in the WAL, which the next opener reads."""
    first = Lifecycle.open(tmp_path)
    first.kickstart_fetched(MAC, 1.0, 3, 3600)
    again = Lifecycle.open(tmp_path)
    assert again.get(MAC).state is State.INSTALLING
    assert again.get(MAC).fetches == (1.0,)
