"""Start one Python TFTP server from PyPI in the foreground: tftpy, PyPXE or fbtftp.

    PEER_VENV/bin/python benchmarks/tftp_peers.py NAME ADDRESS PORT ROOT

``benchmarks/tftp.py`` runs this with the interpreter of a throw-away venv that
holds the peers (they are benchmark-only, never pxed dependencies). py3tftp has
its own ``python -m py3tftp`` and needs no runner. Each server is started the
way its README shows, with logging at WARNING so that per-block or per-transfer
log lines do not slow it down more than they would in production.
"""

from __future__ import annotations

import logging
import os
import sys


def tftpy(address: str, port: int, root: str) -> None:
    import tftpy as lib

    lib.TftpServer(root).listen(address, port)


def pypxe(address: str, port: int, root: str) -> None:
    from pypxe import tftp

    server = tftp.TFTPD(ip=address, port=port, netboot_directory=root)
    server.logger.setLevel(logging.WARNING)
    server.listen()


def fbtftp(address: str, port: int, root: str) -> None:
    import fbtftp as lib

    class FileData(lib.ResponseData):
        def __init__(self, path: str) -> None:
            self._file = open(path, "rb")  # noqa: SIM115 - closed by fbtftp via close()
            self._size = os.fstat(self._file.fileno()).st_size

        def read(self, n: int) -> bytes:
            return self._file.read(n)

        def size(self) -> int:
            return self._size

        def close(self) -> None:
            self._file.close()

    class Handler(lib.BaseHandler):
        def get_response_data(self) -> FileData:
            return FileData(os.path.join(root, os.path.basename(self._path)))

    class Server(lib.BaseServer):
        def get_handler(self, server_addr, peer, path, options):  # type: ignore[no-untyped-def]
            return Handler(server_addr, peer, path, options, lambda stats: None)

    Server(address, port, retries=5, timeout=1).run()


SERVERS = {"tftpy": tftpy, "pypxe": pypxe, "fbtftp": fbtftp}


def main() -> None:
    name, address, port, root = sys.argv[1:5]
    logging.basicConfig(level=logging.WARNING)
    SERVERS[name](address, int(port), root)


if __name__ == "__main__":
    main()
