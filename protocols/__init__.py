"""Wire grammars and sans-I/O state machines for pxed.

Nothing in this package touches sockets, files, clocks or Twisted: bytes and
``now`` go in, typed messages and actions come out.  That keeps every protocol
decision testable with plain values and replayable from packet captures.
"""
