"""Response bodies from a file descriptor: ``os.sendfile`` on plain TCP, ``os.pread`` otherwise.

twisted.web.static copies every byte through Python in 64 KiB reads, which caps
a 1 GiB kernel or install image at a fraction of what the disk and the network
can do. Here the kernel copies from the page cache to the socket.

How it fits Twisted: the producer is registered with the request as a push
producer. It writes the response headers (and multipart boundaries) through the
request as usual, so they sit in the transport's buffer; before each
``sendfile`` it waits for that buffer to drain, so bytes never overtake each
other. Waiting uses the transport's own mechanism: with ``producerPaused`` set
and writing started, the transport calls the channel's ``resumeProducing``
(which calls ours) as soon as its buffer is empty and the socket writable,
exactly as after it had paused us for a full buffer. So there is no second
registration of the socket with the reactor and no extra thread.

Bodies are given as pieces: literal bytes, or (offset, length) of the
descriptor. Offsets are explicit (pread/sendfile with an offset), so one
descriptor, like an ISO image's, serves any number of responses at once.
"""

from __future__ import annotations

import errno
import os
from collections import deque
from collections.abc import Callable, Iterable
from typing import cast

from twisted.internet import tcp
from twisted.internet.interfaces import IPushProducer, ITCPTransport
from twisted.logger import Logger
from twisted.web.server import Request
from zope.interface import implementer

from pxed.web.byteranges import Piece

log = Logger()

# Bytes one sendfile() call may move before we let other connections run.
# Large enough that syscall overhead vanishes, small enough that 50 clients
# share the reactor fairly.
SENDFILE_CHUNK = 4 * 1024 * 1024

# One pread()+write() step of the fallback path.
READ_CHUNK = 256 * 1024

# sendfile() errors that mean the client is gone, not that pxed failed: a reset, or a
# machine powered off mid-download (TCP gives up: ETIMEDOUT, or ICMP says unreachable).
# The channel is not reading while a response is sent, so only this write sees them.
_CLIENT_GONE = frozenset(
    {
        errno.EPIPE,
        errno.ECONNRESET,
        errno.ECONNABORTED,
        errno.ENOTCONN,
        errno.ETIMEDOUT,
        errno.EHOSTUNREACH,
        errno.ENETUNREACH,
    }
)


def send_body(request: Request, fd: int, pieces: Iterable[Piece], done: Callable[[], None]) -> None:
    """Start writing ``pieces`` as the body of ``request``; call ``done`` at the end.

    ``done`` runs exactly once, when the body is complete or the client went
    away, so the caller can close a descriptor it opened for this response.
    """
    transport = getattr(request.channel, "transport", None)
    producer: _Body
    if isinstance(transport, tcp.Connection):
        producer = _SendfileBody(request, fd, pieces, done, transport)
    else:
        producer = _PreadBody(request, fd, pieces, done)
    producer.start()


@implementer(IPushProducer)
class _Body:
    def __init__(
        self, request: Request, fd: int, pieces: Iterable[Piece], done: Callable[[], None]
    ) -> None:
        self.request = request
        self.fd = fd
        self.pieces: deque[Piece] = deque(pieces)
        self._done: Callable[[], None] | None = done
        self.paused = False

    def start(self) -> None:
        self.request.registerProducer(self, True)
        self.resumeProducing()

    def pauseProducing(self) -> None:
        self.paused = True

    def resumeProducing(self) -> None:
        raise NotImplementedError

    def stopProducing(self) -> None:
        """The client went away: drop the rest, release the descriptor."""
        self.pieces.clear()
        self._release()

    def _finish(self) -> None:
        self.request.unregisterProducer()
        self.request.finish()
        self._release()

    def _release(self) -> None:
        if self._done is not None:
            done, self._done = self._done, None
            done()

    def _short_file(self, offset: int) -> None:
        # The file shrank under us: the promised Content-Length cannot be
        # honoured, and only closing the connection tells the client.
        log.warn("file shrank while being served (fd {fd} at {offset})", fd=self.fd, offset=offset)
        self.request.unregisterProducer()
        # HTTPChannel types its transport ITransport | None; while a response is sent it is
        # the connection's, and connections (TCP, TLS) have abortConnection.
        cast(ITCPTransport, self.request.channel.transport).abortConnection()
        self._release()


class _PreadBody(_Body):
    """The portable path: pread() and write through the request (TLS, tests, HTTP/2)."""

    def resumeProducing(self) -> None:
        self.paused = False
        while not self.paused and self._done is not None:
            if not self.pieces:
                self._finish()
                return
            piece = self.pieces.popleft()
            if isinstance(piece, bytes):
                self.request.write(piece)
                continue
            offset, length = piece
            data = os.pread(self.fd, min(length, READ_CHUNK), offset)
            if not data:
                self._short_file(offset)
                return
            if len(data) < length:
                self.pieces.appendleft((offset + len(data), length - len(data)))
            # write() may call pauseProducing() when the transport buffer fills.
            self.request.write(data)


class _SendfileBody(_Body):
    def __init__(
        self,
        request: Request,
        fd: int,
        pieces: Iterable[Piece],
        done: Callable[[], None],
        transport: tcp.Connection,
    ) -> None:
        super().__init__(request, fd, pieces, done)
        self.transport = transport

    def start(self) -> None:
        self.request.registerProducer(self, True)
        self.request.write(b"")  # the status line and headers
        self._wait_for_drain()

    def resumeProducing(self) -> None:
        self.paused = False
        budget = SENDFILE_CHUNK
        while self._done is not None:
            if not self.pieces:
                self._finish()
                return
            piece = self.pieces[0]
            if isinstance(piece, bytes):
                self.pieces.popleft()
                self.request.write(piece)
                self._wait_for_drain()
                return
            if budget <= 0:
                self._wait_for_drain()
                return
            offset, length = piece
            try:
                sent = os.sendfile(self.transport.fileno(), self.fd, offset, min(length, budget))
            except BlockingIOError:
                self._wait_for_drain()
                return
            except OSError as error:
                if error.errno in _CLIENT_GONE:
                    self.transport.abortConnection()
                    self.stopProducing()
                    return
                raise
            if sent == 0:
                self._short_file(offset)
                return
            budget -= sent
            self.request.sentLength += sent
            if sent < length:
                self.pieces[0] = (offset + sent, length - sent)
            else:
                self.pieces.popleft()

    def _wait_for_drain(self) -> None:
        """Be called back (via the channel) once the socket can take more.

        This is the state the transport itself enters after pausing a producer
        for a full buffer; doWrite() then resumes the producer when the buffer
        is empty, which for us means "socket writable, nothing queued before us".
        """
        self.transport.producerPaused = True
        self.transport.startWriting()
