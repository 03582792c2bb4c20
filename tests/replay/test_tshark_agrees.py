"""pxed's reading of every capture agrees with tshark's, packet by packet.

Compared per frame: which frames carry DHCP, DHCPv6 or TFTP at all; for DHCP the
message type, xid and the set of option codes; for DHCPv6 the message type of each
relay and of the message inside, the transaction id and the set of option codes,
nested ones included; for TFTP the opcode, block number, file name of a request and
the option names of a request or OACK.  Skipped when tshark is not installed.
"""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

import pytest

from protocols.dhcp.wire import DhcpPacket
from protocols.dhcpv6.options import IaAddress, IaNa, IaPd, IaPrefix, IaTa, Option
from protocols.dhcpv6.wire import Dhcpv6Message, Dhcpv6Packet, Dhcpv6Relay
from protocols.tftp.wire import Ack, Data, OptionAck, ReadRequest, WriteRequest
from pxed.pcap import tftp_view
from pxed.pcap.payload import Decoded
from tests.replay.corpus import ALL_CAPTURES, label, replay

TSHARK = shutil.which("tshark")
FIELDS = (
    "frame.number",
    "frame.protocols",
    "dhcp.id",
    "dhcp.option.dhcp",
    "dhcp.option.type",
    "dhcpv6.msgtype",
    "dhcpv6.xid",
    "dhcpv6.option.type",
    "tftp.opcode",
    "tftp.block",
    "tftp.source_file",
    "tftp.destination_file",
    "tftp.option.name",
)
# tshark marks Pad and End in dhcp.option.type; pxed's options never include them.
FRAMING_CODES = {"0", "255"}
Facts = tuple[object, ...]


def _tshark_rows(capture: Path) -> dict[int, dict[str, str]]:
    assert TSHARK is not None
    command = [TSHARK, "-n", "-r", str(capture), "-d", "udp.port==9000,tftp", "-T", "fields"]
    command += ["-E", "occurrence=a", "-E", "aggregator=|", "-E", "separator=/t"]
    for name in FIELDS:
        command += ["-e", name]
    output = subprocess.run(command, capture_output=True, text=True, check=True, timeout=120)
    rows = {}
    for line in output.stdout.splitlines():
        values = dict(zip(FIELDS, line.split("\t"), strict=True))
        layers = values["frame.protocols"].split(":")
        if {"dhcp", "dhcpv6", "tftp"} & set(layers):
            rows[int(values["frame.number"])] = values
    return rows


def _tshark_facts(row: dict[str, str]) -> Facts:
    if row["dhcp.id"]:
        codes = set(row["dhcp.option.type"].split("|")) - FRAMING_CODES - {""}
        kind = int(row["dhcp.option.dhcp"]) if row["dhcp.option.dhcp"] else None
        return ("DHCP", kind, int(row["dhcp.id"], 16), frozenset(int(code) for code in codes))
    if row["dhcpv6.msgtype"]:
        kinds = tuple(int(kind) for kind in row["dhcpv6.msgtype"].split("|"))
        codes = frozenset(int(code) for code in row["dhcpv6.option.type"].split("|") if code)
        return ("DHCPv6", kinds, int(row["dhcpv6.xid"], 16), codes)
    opcode = int(row["tftp.opcode"])
    block = int(row["tftp.block"]) if opcode in (3, 4) else None
    filename = {1: row["tftp.source_file"], 2: row["tftp.destination_file"]}.get(opcode)
    names = tuple(row["tftp.option.name"].split("|")) if opcode in (1, 2, 6) else None
    return ("TFTP", opcode, block, filename, names if names != ("",) else ())


def _dhcp_facts(packet: DhcpPacket) -> Facts:
    found = packet.get(53)
    kind = int(found.value) if found is not None and isinstance(found.value, int) else None
    return ("DHCP", kind, packet.xid, frozenset(option.code for option in packet.options))


def _tftp_facts(message: object) -> Facts:
    opcode = int(tftp_view.opcode(message))  # type: ignore[arg-type]
    block = message.block if isinstance(message, Data | Ack) else None
    filename = message.filename if isinstance(message, ReadRequest | WriteRequest) else None
    names = None
    if isinstance(message, ReadRequest | WriteRequest | OptionAck):
        names = tuple(name for name, _ in message.options)
    return ("TFTP", opcode, block, filename, names)


def _dhcpv6_facts(message: Dhcpv6Packet) -> Facts:
    kinds = [int(message.msg_type)]
    codes = _codes(message.options)
    while isinstance(message, Dhcpv6Relay):
        message = message.relayed
        kinds.append(int(message.msg_type))
        codes |= _codes(message.options)
    assert isinstance(message, Dhcpv6Message)
    return ("DHCPv6", tuple(kinds), message.transaction_id, frozenset(codes))


def _codes(options: tuple[Option, ...]) -> set[int]:
    """Option codes, and those of the options nested in IAs and their addresses."""
    found = set()
    for option in options:
        found.add(option.code)
        value = option.value
        if isinstance(value, IaNa | IaTa | IaPd | IaAddress | IaPrefix):
            found |= _codes(value.options)
    return found


def _pxed_facts(message: object) -> Facts:
    if isinstance(message, DhcpPacket):
        return _dhcp_facts(message)
    if isinstance(message, Dhcpv6Message | Dhcpv6Relay):
        return _dhcpv6_facts(message)
    return _tftp_facts(message)


@pytest.mark.skipif(TSHARK is None, reason="tshark is not installed")
@pytest.mark.parametrize("capture", ALL_CAPTURES, ids=[label(path) for path in ALL_CAPTURES])
def test_pxed_and_tshark_read_the_same_packets(capture: Path) -> None:
    rows = _tshark_rows(capture)
    results = replay(capture)
    assert sorted(r.number for r in results) == sorted(rows), "frames with DHCP/TFTP differ"
    mine = {
        r.number: _pxed_facts(r.outcome.message) for r in results if isinstance(r.outcome, Decoded)
    }
    theirs = {number: _tshark_facts(rows[number]) for number in mine}
    assert mine == theirs
