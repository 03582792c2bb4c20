"""The lab: network namespaces, QEMU machines and guests.

Tests, benchmarks and `make demo` import it; it is not part of the pxed package.
"""
