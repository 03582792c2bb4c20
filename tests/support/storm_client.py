"""A boot storm in one process: N hosts, each doing a PXE boot's network steps at once.

Each host is a thread with its own source address (its reservation on ``lo``): DHCP
DISCOVER and REQUEST (ciaddr set, so pxed answers by unicast to that address, never a
broadcast), TFTP of the loader and its per-MAC pxelinux config, HTTP of the kernel and
initrd from ``/tftp/``, the Kickstart, and the done callback the Kickstart carries.
Run inside the test's network namespace::

    python -m tests.support.storm_client PLAN.json

PLAN is ``{"server", "dhcp_port", "client_port", "tftp_port", "http_port", "hosts":
[{"mac", "ip", "quirk"}]}``; a quirk makes a host misbehave the way firmware does, so
the status page has retries and failures to show: ``dhcp-retry`` ignores the first
OFFER, ``loader-retry`` asks for a missing loader first, ``initrd-stalls`` stops
acknowledging its initrd over TFTP, ``no-kickstart`` stops after the initrd,
``install-fails`` calls back ``failed``. Prints one JSON line per host
(its MAC and the step it failed at, if any) and exits 1 if any host failed.
"""

from __future__ import annotations

import contextlib
import http.client
import json
import re
import socket
import sys
import threading
from ipaddress import IPv4Address
from pathlib import Path
from typing import Any

from protocols.dhcp.options import MessageType
from protocols.tftp.wire import ReadRequest, encode_tftp
from tests.protocols.dhcp_engine_support import request as dhcp_request
from tests.support.tftp_client import TftpClientError, fetch

PXE = ((60, "PXEClient:Arch:00000:UNDI:002001"), (93, (0,)))
DONE = re.compile(r"--data (token=\S+) (http://\S+/(?:done|failed))")


class StormError(Exception):
    """One host's boot step failed; the message says which."""


class Host:
    def __init__(self, plan: dict[str, Any], host: dict[str, str]) -> None:
        self.plan = plan
        self.mac, self.ip, self.quirk = host["mac"], host["ip"], host.get("quirk", "")
        self.xid = int(self.mac.replace(":", "")[-8:], 16)

    def boot(self) -> None:
        self.dhcp()
        server = (self.plan["server"], self.plan["tftp_port"])
        if self.quirk == "loader-retry":
            with contextlib.suppress(TftpClientError):  # the page marks the failed attempt
                fetch(server, "missing.0", blksize=1468, source=self.ip)
        fetch(server, "pxelinux.0", blksize=1468, source=self.ip)
        fetch(server, "pxelinux.cfg/01-" + self.mac.replace(":", "-"), source=self.ip)
        self.get("/tftp/vmlinuz")
        if self.quirk == "initrd-stalls":
            self.stall(server, "initrd.img")
            return
        self.get("/tftp/initrd.img")
        if self.quirk == "no-kickstart":
            return
        token, url = self.callback_of(self.get(f"/ks/{self.mac}"))
        if self.quirk == "install-fails":
            url = url.replace("/done", "/failed")
        self.post(url.split("/", 3)[3], token)

    def stall(self, server: tuple[str, int], name: str) -> None:
        """Ask for ``name`` and never acknowledge its first block: pxed retransmits, then
        gives the transfer up, as with a machine that hung mid-download."""
        with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as sock:
            sock.bind((self.ip, 0))
            sock.settimeout(5.0)
            sock.sendto(encode_tftp(ReadRequest(name)), server)
            sock.recv(2048)

    def dhcp(self) -> None:
        ip = IPv4Address(self.ip)
        with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as sock:
            sock.bind((self.ip, self.plan["client_port"]))
            sock.settimeout(2.0)
            server = (self.plan["server"], self.plan["dhcp_port"])
            offers = 2 if self.quirk == "dhcp-retry" else 1
            for _ in range(offers):
                self.exchange(sock, server, dhcp_request(MessageType.DISCOVER, self.mac,
                              xid=self.xid, options=PXE, ciaddr=ip))  # fmt: skip
            chosen = ((50, ip), (54, IPv4Address(self.plan["server"])), *PXE)
            self.exchange(sock, server, dhcp_request(MessageType.REQUEST, self.mac,
                          xid=self.xid, options=chosen, ciaddr=ip))  # fmt: skip

    def exchange(self, sock: socket.socket, server: tuple[str, int], datagram: bytes) -> None:
        """Send, and wait for an answer to our xid, sending again after 2 s, 3 tries."""
        for _ in range(3):
            sock.sendto(datagram, server)
            try:
                while True:
                    reply = sock.recv(2048)
                    if reply[4:8] == datagram[4:8]:
                        return
            except TimeoutError:
                continue
        raise StormError("dhcp: no answer")

    def connection(self) -> http.client.HTTPConnection:
        server, port = self.plan["server"], self.plan["http_port"]
        return http.client.HTTPConnection(server, port, timeout=20, source_address=(self.ip, 0))

    def get(self, path: str) -> str:
        connection = self.connection()
        try:
            connection.request("GET", path)
            response = connection.getresponse()
            body = response.read()
        finally:
            connection.close()
        if response.status != 200:
            raise StormError(f"GET {path}: {response.status}")
        return body.decode("latin-1")

    def post(self, path: str, body: str) -> None:
        connection = self.connection()
        headers = {"content-type": "application/x-www-form-urlencoded"}
        try:
            connection.request("POST", "/" + path, body=body, headers=headers)
            status = connection.getresponse().status
        finally:
            connection.close()
        if status != 200:
            raise StormError(f"POST /{path}: {status}")

    @staticmethod
    def callback_of(kickstart: str) -> tuple[str, str]:
        found = DONE.search(kickstart)
        if found is None:
            raise StormError("the Kickstart has no done callback")
        return found.group(1), found.group(2)


def main() -> int:
    plan = json.loads(Path(sys.argv[1]).read_text())
    results: dict[str, str | None] = {}

    def run(host: Host) -> None:
        try:
            host.boot()
            results[host.mac] = None
        except Exception as error:
            results[host.mac] = f"{type(error).__name__}: {error}"

    threads = [threading.Thread(target=run, args=(Host(plan, h),)) for h in plan["hosts"]]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=60)
    for host in plan["hosts"]:
        print(json.dumps({"mac": host["mac"], "error": results.get(host["mac"], "unfinished")}))
    return 0 if all(results.get(h["mac"], "x") is None for h in plan["hosts"]) else 1


if __name__ == "__main__":
    sys.exit(main())
