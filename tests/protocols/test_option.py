"""protocols/option.py: the half of an option DHCPv4 and DHCPv6 share."""

from __future__ import annotations

import pytest

from protocols.dhcp.options import Option as Option4
from protocols.dhcpv6.options import Option as Option6
from protocols.errors import MalformedPacket
from protocols.option import BadOptionValue, InvalidValue


@pytest.mark.parametrize(
    ("option", "reason"),
    [
        (Option4(51, b"\x00\x01\x02", offset=240), "option 51 (lease-time): length 3, expected 4"),
        (Option6(8, b"\x00", offset=4), "option 8 (elapsed-time): length 1, expected 2"),
    ],
)
def test_bytes_that_do_not_fit_read_as_one_invalid_value_type_in_both_families(
    option: Option4 | Option6, reason: str
) -> None:
    assert isinstance(option.value, InvalidValue)
    assert option.error is not None and option.error.startswith(reason)
    assert str(option).startswith(f"{option.name}=INVALID (")
    with pytest.raises(MalformedPacket) as raised:
        option.typed()
    assert raised.value.offset == option.offset and raised.value.reason == option.error


def test_a_value_an_option_cannot_carry_names_the_option_in_both_families() -> None:
    with pytest.raises(BadOptionValue, match=r"option 51 \(lease-time\): cannot encode -1"):
        Option4.of(51, -1)
    with pytest.raises(BadOptionValue, match=r"option 8 \(elapsed-time\): cannot encode -1"):
        Option6.of(8, -1)
