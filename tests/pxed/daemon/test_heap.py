"""Start-up's objects are frozen out of the collector's full passes, once the services run."""

from __future__ import annotations

import gc
from pathlib import Path

from pxed.daemon.heap import FrozenHeap
from pxed.daemon.tap import makeService
from tests.pxed.daemon.test_tap import options_for


def test_starting_freezes_what_start_up_built():
    try:
        FrozenHeap().startService()
        assert gc.get_freeze_count() > 0
    finally:
        gc.unfreeze()


def test_the_heap_is_frozen_after_every_service_has_loaded_its_state(tmp_path: Path):
    top = makeService(options_for(tmp_path, "lo"))
    names = [service.name for service in top]  # type: ignore[attr-defined]
    assert names[-2:] == ["frozen-heap", "systemd-notify"]
    assert names.index("dhcp") < names.index("frozen-heap")
