"""``functools.cached_property`` without the lock Python 3.11 takes on every first read.

CPython up to 3.11 serialises the first read of a cached_property across *all*
instances of the class with one RLock; a DHCP request makes a dozen fresh
objects whose values are read once each, so the lock was a measurable part of
an exchange (benchmarks/dhcp_profile.py).  3.12 dropped the lock for the same
reason.  Like cached_property, ``once`` is a non-data descriptor: the value goes
into the instance's ``__dict__`` (frozen dataclasses included) and later reads
never reach it; an exception is not cached.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, Generic, TypeVar, overload

T = TypeVar("T")


class once(Generic[T]):
    def __init__(self, func: Callable[[Any], T]) -> None:
        self.func = func
        self.name = func.__name__
        self.__doc__ = func.__doc__

    def __set_name__(self, owner: type, name: str) -> None:
        self.name = name

    @overload
    def __get__(self, instance: None, owner: type | None = None) -> once[T]: ...

    @overload
    def __get__(self, instance: object, owner: type | None = None) -> T: ...

    def __get__(self, instance: object | None, owner: type | None = None) -> T | once[T]:
        if instance is None:
            return self
        value = self.func(instance)
        instance.__dict__[self.name] = value
        return value
