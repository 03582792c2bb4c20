"""Decode and encode rates of pxed's wire grammars (a benchmark, not a test).

The four packets are the ones a boot storm is made of: a PXE DISCOVER shaped
like iPXE's (docs/firmware.md), an OFFER carrying boot options, an RRQ with the
options pxelinux sends, and a 1468-byte DATA block (the per-block fast path).

    .venv/bin/python benchmarks/codec.py [--runs 7] [--seconds 0.3]

Prints a Markdown table: the median of ``--runs`` timed runs, each as long as
``--seconds``.  Time is this process's CPU time (``time.process_time``), as in
benchmarks/dhcp_profile.py: on the shared 2-core machine, wall-clock rates swung 2-3x
with other work between two runs of the same code, CPU time by a few per cent.
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time
from collections.abc import Callable
from ipaddress import IPv4Address

from protocols.dhcp.options import (
    ClientArch,
    ClientId,
    ClientUuid,
    MessageType,
    NetworkInterfaceId,
    UserClass,
)
from protocols.dhcp.wire import DhcpPacket, decode_dhcp, encode_dhcp, make_options
from protocols.tftp.wire import (
    Data,
    ReadRequest,
    decode_data,
    decode_tftp,
    encode_data,
    encode_tftp,
)

MAC = bytes.fromhex("525400123456")
SERVER = IPv4Address("10.213.7.1")

DISCOVER = DhcpPacket(
    xid=0x1234ABCD,
    chaddr=MAC,
    options=make_options(
        [
            (53, MessageType.DISCOVER),
            (57, 1472),
            (93, (ClientArch.BIOS,)),
            (94, NetworkInterfaceId(1, 2, 1)),
            (60, "PXEClient:Arch:00000:UNDI:002001"),
            (77, UserClass((b"iPXE",), bare=True)),
            (55, (1, 3, 6, 7, 12, 15, 17, 26, 43, 60, 66, 67, 119, 128, 129, 130, 175, 203)),
            (175, bytes.fromhex("b105018086100eeb03010000170101220101130101")),
            (61, ClientId(1, MAC)),
            (97, ClientUuid(0, bytes(range(16)))),
        ]
    ),
)
OFFER = DhcpPacket.reply(
    DISCOVER,
    [
        (53, MessageType.OFFER),
        (54, SERVER),
        (51, 3600),
        (1, IPv4Address("255.255.255.0")),
        (3, (SERVER,)),
        (6, (SERVER,)),
        (60, "PXEClient"),
        (43, bytes.fromhex("060108ff")),
        (66, str(SERVER)),
        (67, "pxelinux.0"),
        (97, ClientUuid(0, bytes(range(16)))),
    ],
    file="pxelinux.0",
    yiaddr=IPv4Address("10.213.7.100"),
    siaddr=SERVER,
)
RRQ = ReadRequest(
    "pxelinux.cfg/01-52-54-00-12-34-56", "octet", (("tsize", "0"), ("blksize", "1408"))
)
PAYLOAD = bytes(range(256)) * 5 + bytes(188)  # 1468 bytes


def rate(work: Callable[[], object], seconds: float, runs: int) -> float:
    """Median operations per CPU second over ``runs`` runs of about ``seconds`` each."""
    results = []
    for _ in range(runs):
        count = 0
        started = time.process_time()
        deadline = started + seconds
        while True:
            for _ in range(100):
                work()
            count += 100
            now = time.process_time()
            if now >= deadline:
                break
        results.append(count / (now - started))
    return statistics.median(results)


def cases() -> list[tuple[str, int, Callable[[], object], Callable[[], object]]]:
    discover, offer, rrq = encode_dhcp(DISCOVER), encode_dhcp(OFFER), encode_tftp(RRQ)
    data = encode_data(1, PAYLOAD)
    decoded_discover, decoded_offer = decode_dhcp(discover), decode_dhcp(offer)
    decoded_rrq = decode_tftp(rrq)
    return [
        (
            "DHCP DISCOVER (iPXE, PXE)",
            len(discover),
            lambda: decode_dhcp(discover),
            lambda: encode_dhcp(decoded_discover),
        ),
        (
            "DHCP OFFER with boot options",
            len(offer),
            lambda: decode_dhcp(offer),
            lambda: encode_dhcp(decoded_offer),
        ),
        (
            "TFTP RRQ with options",
            len(rrq),
            lambda: decode_tftp(rrq),
            lambda: encode_tftp(decoded_rrq),
        ),
        (
            "TFTP DATA 1468 B (Construct grammar)",
            len(data),
            lambda: decode_tftp(data),
            lambda: encode_tftp(Data(1, PAYLOAD)),
        ),
        (
            "TFTP DATA 1468 B (struct fast path)",
            len(data),
            lambda: decode_data(data),
            lambda: encode_data(1, PAYLOAD),
        ),
    ]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=7)
    parser.add_argument("--seconds", type=float, default=0.3)
    args = parser.parse_args()
    print(
        f"Python {sys.version.split()[0]}, median of {args.runs} runs of {args.seconds} s"
        " of CPU time\n"
    )
    print("| packet | bytes | decode /s | decode µs | encode /s | encode µs |")
    print("| --- | ---: | ---: | ---: | ---: | ---: |")
    for name, size, decode, encode in cases():
        dec, enc = rate(decode, args.seconds, args.runs), rate(encode, args.seconds, args.runs)
        print(f"| {name} | {size} | {dec:,.0f} | {1e6 / dec:.1f} | {enc:,.0f} | {1e6 / enc:.1f} |")


if __name__ == "__main__":
    main()
