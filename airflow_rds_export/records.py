"""Named tuples that are cheap to define: what every DAG file importing an operator pays.

``typing.NamedTuple`` compiles code for each class it makes (a ``__new__``, and every
field's annotation): about 120 us a class. Importing the operators and sensors defined a
dozen, a fifth of that import's time; they are records now. A :class:`Record` is
declared the same way and is the same thing at run time (a tuple with named fields and
defaults, ``_fields``, ``_field_defaults``, ``_make``, ``_replace``, ``_asdict``, the same
``repr``, equality, hashing and pickling) for a tenth of that. To mypy it *is*
``typing.NamedTuple``, so every use is type-checked as before.

As with ``NamedTuple``, only a class deriving from :class:`Record` directly declares
fields; a subclass of a record (one adding methods, say) is an ordinary class.
"""

from __future__ import annotations

from operator import itemgetter
from typing import TYPE_CHECKING, Any, ClassVar

__all__ = ["Record"]

if TYPE_CHECKING:
    from typing import NamedTuple as Record
else:

    class _RecordType(type):
        """Turns a class deriving from :class:`Record` into a named tuple of its fields."""

        def __new__(mcs, name: str, bases: tuple[type, ...], namespace: dict[str, Any]) -> Any:
            record = globals().get("Record")  # None while Record itself is being made
            if record is None or record not in bases:
                return super().__new__(mcs, name, bases, namespace)  # Record, or a subclass
            if len(bases) > 1:
                raise TypeError(f"{name}: a Record class derives from Record alone")
            fields = tuple(namespace.get("__annotations__", {}))
            defaults = {field: namespace[field] for field in fields if field in namespace}
            if any(field in defaults for field in fields[: len(fields) - len(defaults)]):
                raise TypeError(f"{name}: a field without a default follows one with a default")
            namespace.update(
                __slots__=(),
                _fields=fields,
                _field_defaults=defaults,
                _defaults=tuple(defaults.values()),
                __match_args__=fields,
            )
            for index, field in enumerate(fields):
                namespace[field] = property(itemgetter(index), doc=f"Alias for field {index}")
            return super().__new__(mcs, name, bases, namespace)

    class Record(tuple, metaclass=_RecordType):
        """A ``typing.NamedTuple`` built without compiling code; see the module docstring."""

        __slots__ = ()
        _fields: ClassVar[tuple[str, ...]] = ()
        _field_defaults: ClassVar[dict[str, Any]] = {}
        _defaults: ClassVar[tuple[Any, ...]] = ()  # the trailing fields' defaults, in order

        def __new__(cls, *args: Any, **kwargs: Any) -> Any:
            fields = cls._fields
            if not kwargs:
                # The common case, quickly: positional arguments, defaults for the rest.
                left_out = len(fields) - len(args)
                if left_out == 0:
                    return tuple.__new__(cls, args)
                if 0 < left_out <= len(cls._defaults):
                    return tuple.__new__(cls, args + cls._defaults[-left_out:])
            if len(args) > len(fields):
                raise TypeError(
                    f"{cls.__name__}() takes {len(fields)} arguments but {len(args)} were given"
                )
            values = dict(zip(fields, args, strict=False))
            for field, value in kwargs.items():
                if field not in fields:
                    raise TypeError(
                        f"{cls.__name__}() got an unexpected keyword argument {field!r}"
                    )
                if field in values:
                    raise TypeError(f"{cls.__name__}() got multiple values for argument {field!r}")
                values[field] = value
            defaults = cls._field_defaults
            missing = [field for field in fields if field not in values and field not in defaults]
            if missing:
                raise TypeError(f"{cls.__name__}() missing required arguments: {missing}")
            return tuple.__new__(cls, [values.get(f, defaults.get(f)) for f in fields])

        @classmethod
        def _make(cls, iterable: Any) -> Any:
            made = tuple.__new__(cls, iterable)
            if len(made) != len(cls._fields):
                raise TypeError(f"Expected {len(cls._fields)} arguments, got {len(made)}")
            return made

        def _replace(self, **changes: Any) -> Any:
            unknown = set(changes) - set(self._fields)
            if unknown:
                raise ValueError(f"Got unexpected field names: {sorted(unknown)!r}")
            return self._make(
                [changes.get(f, value) for f, value in zip(self._fields, self, strict=True)]
            )

        def _asdict(self) -> dict[str, Any]:
            return dict(zip(self._fields, self, strict=True))

        def __getnewargs__(self) -> tuple[Any, ...]:
            return tuple(self)

        def __repr__(self) -> str:
            shown = ", ".join(
                f"{field}={value!r}" for field, value in zip(self._fields, self, strict=True)
            )
            return f"{type(self).__name__}({shown})"
