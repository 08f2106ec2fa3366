"""Tests of :mod:`airflow_rds_export.records`: a :class:`Record` behaves as the
``typing.NamedTuple`` it stands in for.

Each row is one thing code does with a named tuple, done to the same class declared both
ways; the results (or the exception types) must be the same.
"""

from __future__ import annotations

import copy
import json
import pickle
from collections.abc import Callable
from typing import Any, NamedTuple

import pytest

from airflow_rds_export.records import Record


class AsRecord(Record):
    """A record."""

    name: str
    outcome: str = "complete"
    sizes: tuple[float, ...] = ()

    @property
    def shown(self) -> str:
        return f"{self.name} {self.outcome}"


class AsNamedTuple(NamedTuple):
    """The same, as typing.NamedTuple."""

    name: str
    outcome: str = "complete"
    sizes: tuple[float, ...] = ()

    @property
    def shown(self) -> str:
        return f"{self.name} {self.outcome}"


def _repr(value: Any) -> str:
    return repr(value).split("(", 1)[1]  # without the class name


USES: dict[str, Callable[[Any], Any]] = {
    "positional": lambda cls: tuple(cls("t", "failed", (1.0,))),
    "defaults": lambda cls: tuple(cls("t")),
    "some defaults": lambda cls: tuple(cls("t", "skipped")),
    "keywords": lambda cls: tuple(cls(outcome="failed", name="t")),
    "mixed": lambda cls: tuple(cls("t", sizes=(2.0,))),
    "fields": lambda cls: (cls._fields, cls._field_defaults, cls.__match_args__),
    "attributes": lambda cls: (cls("t").name, cls("t").outcome, cls("t").shown),
    "index and unpack": lambda cls: (cls("t")[1], [*cls("t", "failed")]),
    "repr": lambda cls: _repr(cls("t", "failed")),
    "equals a tuple": lambda cls: cls("t") == ("t", "complete", ()),
    "hash": lambda cls: hash(cls("t")) == hash(("t", "complete", ())),
    "is a tuple": lambda cls: isinstance(cls("t"), tuple),
    "json": lambda cls: json.dumps(cls("t", sizes=(1.5,))),
    "_asdict": lambda cls: cls("t")._asdict(),
    "_replace": lambda cls: tuple(cls("t")._replace(outcome="failed", sizes=(3.0,))),
    "_make": lambda cls: tuple(cls._make(["t", "failed", ()])),
    "pickle": lambda cls: pickle.loads(pickle.dumps(cls("t", "failed"))) == cls("t", "failed"),
    "pickled type": lambda cls: type(pickle.loads(pickle.dumps(cls("t")))) is cls,
    "deepcopy": lambda cls: copy.deepcopy(cls("t", sizes=(1.0,))) == cls("t", sizes=(1.0,)),
    "no __dict__": lambda cls: hasattr(cls("t"), "__dict__"),
    # Wrong uses: the exception type must match.
    "missing field": lambda cls: cls(),
    "missing field, keywords": lambda cls: cls(outcome="failed"),
    "too many": lambda cls: cls("t", "failed", (), "extra"),
    "unknown keyword": lambda cls: cls("t", colour="red"),
    "twice": lambda cls: cls("t", name="u"),
    "set a field": lambda cls: setattr(cls("t"), "name", "u"),
    "set an attribute": lambda cls: setattr(cls("t"), "other", 1),
    "_replace unknown": lambda cls: cls("t")._replace(colour="red"),
    "_make wrong length": lambda cls: cls._make(["t"]),
}


def _outcome(use: Callable[[Any], Any], cls: type) -> Any:
    try:
        return use(cls)
    except Exception as exc:
        return type(exc)


@pytest.mark.parametrize("use", USES.values(), ids=USES.keys())
def test_a_record_behaves_as_a_named_tuple(use: Callable[[Any], Any]) -> None:
    assert _outcome(use, AsRecord) == _outcome(use, AsNamedTuple)


def test_a_subclass_of_a_record_keeps_its_fields() -> None:
    class Mixin:
        __slots__ = ()

        def first(self) -> Any:
            return self[0]  # type: ignore[index]

    class Extended(AsRecord, Mixin):
        __slots__ = ()
        label: str  # a subclass declares no fields (as with NamedTuple)

    extended = Extended("t", "failed")
    assert (Extended._fields, extended.first(), extended.outcome) == (
        AsRecord._fields,
        "t",
        "failed",
    )
    assert not hasattr(extended, "__dict__")


@pytest.mark.parametrize(
    "body",
    [
        "class Bad(Record):\n    a: int = 1\n    b: int\n",
        "class Bad(Record, Mixin):\n    a: int\n",
    ],
    ids=["required after default", "more than one base"],
)
def test_a_malformed_record_is_refused(body: str) -> None:
    namespace: dict[str, Any] = {"Record": Record, "Mixin": type("Mixin", (), {})}
    with pytest.raises(TypeError):
        exec(body, namespace)
