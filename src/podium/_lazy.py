"""Parts of the runtime made on first use, so that a command that only lists runs loads no more than it needs."""

from __future__ import annotations

import threading
from collections.abc import Callable
from contextlib import AbstractContextManager
from typing import Any, Generic, Protocol, Self, TypeVar, cast, overload


class Assembled(Protocol):
    """What owns parts: a lock under which they are built (a part may need others built first, so re-entrant)."""

    @property
    def _building(self) -> AbstractContextManager[Any]: ...


Owner = TypeVar("Owner", bound=Assembled)
T = TypeVar("T")


class Part(Generic[Owner, T]):
    """A part of the runtime, built on first use, once, under the runtime's lock: a command that lists runs or
    reviews loads neither DBOS's client nor the model libraries, and threads asking at once get the same part."""

    def __init__(self, build: Callable[[Owner], T]) -> None:
        self._build = build
        self._name = build.__name__
        self.__doc__ = build.__doc__

    @overload
    def __get__(self, owner: None, kind: type[Owner]) -> Self: ...
    @overload
    def __get__(self, owner: Owner, kind: type[Owner]) -> T: ...
    def __get__(self, owner: Owner | None, kind: type[Owner]) -> T | Self:
        if owner is None:
            return self
        with owner._building:  # after the first use the instance's own attribute answers, without this lock
            if self._name not in owner.__dict__:
                owner.__dict__[self._name] = self._build(owner)
        return cast(T, owner.__dict__[self._name])


class Deferred:
    """Stands in for an object made on first use: DBOS's client (DBOS takes a while to load) and the Cedar
    authorizer (the policies are parsed), so that a command that only lists runs needs neither."""

    def __init__(self, make: Callable[[], Any]) -> None:
        self._make = make
        self._lock = threading.Lock()
        self.made: Any = None

    def __getattr__(self, name: str) -> Any:
        with self._lock:
            if self.made is None:
                self.made = self._make()
        return getattr(self.made, name)
