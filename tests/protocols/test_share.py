"""A server's share of a pool: its own positions first, then every other, each once."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from protocols.share import WHOLE_POOL, Share
from tests.support.fuzz import property_settings


@property_settings
@given(
    size=st.integers(min_value=1, max_value=300),
    count=st.integers(min_value=1, max_value=5),
    data=st.data(),
)
def test_a_share_visits_every_pool_position_once_its_own_first(size, count, data):
    index = data.draw(st.integers(min_value=0, max_value=count - 1))
    start = data.draw(st.integers(min_value=0, max_value=size - 1))
    positions = list(Share(index, count).positions(size, start))
    assert sorted(positions) == list(range(size))
    mine = sum(1 for p in range(size) if p % count == index)
    assert all(p % count == index for p in positions[:mine])


def test_the_whole_pool_share_probes_from_the_macs_start_as_before():
    assert list(WHOLE_POOL.positions(5, 3)) == [3, 4, 0, 1, 2]


def test_a_share_that_does_not_exist_is_refused():
    with pytest.raises(ValueError, match="share 2 of 2 does not exist"):
        Share(2, 2)
