"""Bulk inserts as one statement over column arrays: ``INSERT … SELECT … FROM unnest($1, $2, …) … RETURNING``.

SQLAlchemy's executemany with RETURNING ("insertmanyvalues") binds every row's every value through its type
processors and sends one ``VALUES (…), (…)`` statement with a parameter per value (4,500 for 500 raw events), a
new SQL text (and a new prepared statement and plan) for every batch size. Here a batch is one array per column
(one value for a column that holds the same in every row): the driver encodes each array in C, the statement text
does not depend on the batch size, and PostgreSQL plans it once per connection.

Same rows, same defaults (columns not given take their server default, as before), same conflict handling. Arrays
are cast to the base type (``text[]`` for any ``VARCHAR(n)``): the insert's own assignment cast then enforces the
length exactly as a plain insert does (an explicit cast to ``varchar(n)`` would truncate).
"""

from __future__ import annotations

from collections import namedtuple
from collections.abc import Mapping, Sequence
from typing import Any

from pydantic_core import to_json
from sqlalchemy import Boolean, Column, DateTime, Float, Integer, LargeBinary, Result, String, Table, TextClause, text
from sqlalchemy.dialects import postgresql
from sqlalchemy.ext.asyncio import AsyncSession

_DIALECT: Any = postgresql.dialect()  # type: ignore[no-untyped-call]  # the dialect class is untyped
_PREPARER = _DIALECT.identifier_preparer


def array_type(column: Column[Any]) -> str:
    kind = column.type
    if isinstance(kind, postgresql.UUID):
        return "uuid[]"
    if isinstance(kind, postgresql.JSONB):
        return "text[]"  # serialised here, parsed by the ::jsonb in the select list
    if isinstance(kind, DateTime):
        return "timestamptz[]" if kind.timezone else "timestamp[]"
    if isinstance(kind, String):
        return "text[]"
    if isinstance(kind, Boolean):
        return "boolean[]"
    if isinstance(kind, Float):
        return "float8[]"
    if isinstance(kind, Integer):
        return "int8[]"
    if isinstance(kind, LargeBinary):
        return "bytea[]"
    raise TypeError(f"no array type for {column.table.name}.{column.name} ({kind!r})")


def unnest_rows(columns: Sequence[tuple[str, Column[Any]]], first: int = 1, alias: str = "u") -> str:
    """``unnest(CAST($first AS t[]), …) WITH ORDINALITY AS u(name, …, n)``: rows given to a driver-level statement
    as one array per column, each ``(name, the column it is written to)``; ``u.n`` is a row's place in the arrays.
    Pick the values with :func:`picked`."""
    arrays = ", ".join(f"CAST(${first + i} AS {array_type(c)})" for i, (_, c) in enumerate(columns))
    return f"unnest({arrays}) WITH ORDINALITY AS {alias}({', '.join(name for name, _ in columns)}, n)"


def picked(name: str, column: Column[Any], alias: str = "u") -> str:
    """``u.name`` as ``column`` takes it (JSON travels as text in the arrays)."""
    return f"{alias}.{name}::jsonb" if isinstance(column.type, postgresql.JSONB) else f"{alias}.{name}"


def conflict_clause(statement: postgresql.Insert) -> str:
    """The ``ON CONFLICT …`` clause of a SQLAlchemy PostgreSQL insert, as SQLAlchemy writes it (literal values)."""
    sql = str(statement.compile(dialect=_DIALECT, compile_kwargs={"literal_binds": True}))
    start = sql.index(" ON CONFLICT ")
    end = sql.find(" RETURNING ", start)
    return sql[start + 1 : end if end >= 0 else len(sql)]


_RECORDS: dict[tuple[str, ...], Any] = {}


def records(result: Result[Any]) -> list[Any]:
    """The rows of ``result`` as named tuples (``row.column``, ``row[0]``). Reading a column of a SQLAlchemy
    ``Row`` by name costs about 300 ns (its ``__getattr__`` looks the key up in the result's metadata), a named
    tuple's field about 15 ns (``timeit``): 500 rows of twenty columns, each read once, took 3 ms of reads as
    ``Row`` objects and 0.7 ms as records, making them included."""
    keys = tuple(result.keys())
    record: Any = _RECORDS.get(keys)
    if record is None:
        record = _RECORDS[keys] = namedtuple("Record", keys)
    make = record._make
    return [make(row) for row in result]


#: statement variants a ``BulkInsert`` keeps, one for each set of columns it found constant in a batch; past that,
#: batches of a new pattern are sent as arrays in every column (one more variant is one more prepared statement on
#: every connection)
MAX_VARIANTS = 32


class BulkInsert:
    """``INSERT INTO table (columns) SELECT … FROM unnest(…) <conflict> RETURNING <returning>``, built once.

    ``execute`` sends a column whose value is the same in every row (``==``; JSON compared as the text sent) once,
    as a scalar, instead of once a row: the driver checks and encodes every element of an array one by one (190 ns of
    client CPU a UUID, 260 a short text, in a scratch timing; part of it ``isinstance`` checks against
    ``collections.abc`` classes, run in Python), and the columns one batch holds constant are many (the outbox's
    topic, type, source and trace; a run's source, kind and the fields its tool does not report). The first column
    always travels as an array: it gives the statement its row count. Each set of constant columns is its own
    statement text (``MAX_VARIANTS``), planned once per connection."""

    def __init__(
        self,
        table: Table,
        columns: Sequence[str],
        conflict: str = "",
        returning: Sequence[Column[Any]] | None = None,
        *,
        ordered: bool = False,
        where: str = "",
        prefix: str = "",
    ) -> None:
        """``ordered``: rows are inserted in the order given (identity columns such as the outbox's ``seq`` follow
        it), as a multi-row ``VALUES`` would insert them. ``where``: a condition on the insert (for a statement
        embedded in a larger one, e.g. ``EXISTS (SELECT FROM c)``). ``prefix``: of its parameter names, so that
        ``sql`` can sit beside other parameters in one statement (``sql`` and ``parameters`` send every column as an
        array)."""
        self.table = table
        self.columns = tuple(columns)
        self._types = [table.c[name] for name in columns]
        self.prefix = prefix
        self.jsonb = frozenset(c.name for c in self._types if isinstance(c.type, postgresql.JSONB))
        self._conflict = conflict
        self._where = where
        self._ordered = ordered
        self._returned = list(returning if returning is not None else table.c)
        self.returns = bool(self._returned)
        self.sql = self._sql(frozenset())
        self.statement = self._statement(self.sql)
        self._variants: dict[frozenset[int], TextClause] = {frozenset(): self.statement}

    def _sql(self, scalar: frozenset[int]) -> str:
        """The statement with the columns at ``scalar`` (their indexes) sent as one value each."""
        p = self.prefix
        each = [(i, c) for i, c in enumerate(self._types) if i not in scalar]
        arrays = ", ".join(f"CAST(:{p}c{i} AS {array_type(c)})" for i, c in each)
        names = ", ".join(f"c{i}" for i, _ in each)

        def pick(i: int, column: Column[Any]) -> str:
            value = f"CAST(:{p}c{i} AS {array_type(column)[:-2]})" if i in scalar else f"u.c{i}"
            return f"{value}::jsonb" if column.name in self.jsonb else value

        picks = ", ".join(pick(i, c) for i, c in enumerate(self._types))
        into = ", ".join(_PREPARER.quote(c.name) for c in self._types)
        ordered = self._ordered
        source = f"unnest({arrays}) WITH ORDINALITY AS u({names}, n)" if ordered else f"unnest({arrays}) AS u({names})"
        sql = f"INSERT INTO {_PREPARER.format_table(self.table)} ({into}) SELECT {picks} FROM {source}"
        if self._where:
            sql += f" WHERE {self._where}"
        if ordered:
            sql += " ORDER BY u.n"
        if self._conflict:
            sql += f" {self._conflict}"
        if self._returned:
            sql += f" RETURNING {', '.join(_PREPARER.quote(c.name) for c in self._returned)}"
        return sql

    def _statement(self, sql: str) -> TextClause:
        return text(sql).columns(*self._returned) if self._returned else text(sql)  # type: ignore[return-value]

    def _values(self, rows: Sequence[Mapping[str, Any]], name: str) -> list[Any]:
        values = [row[name] for row in rows]
        if name not in self.jsonb:
            return values
        # JSON text (None is JSON null, as SQLAlchemy's JSONB binds it), by pydantic-core: about 3x faster than
        # json.dumps (1.0 against 3.4 us for a CDEvent), and jsonb stores the same value either way. One dict shared
        # by several rows (a request's trace, the kept headers of POST /events) is serialised once.
        done: dict[int, str] = {}
        out = []
        for v in values:
            key = id(v)
            if key not in done:
                done[key] = to_json(v).decode()
            out.append(done[key])
        return out

    def parameters(self, rows: Sequence[Mapping[str, Any]]) -> dict[str, Any]:
        """The parameters of ``sql``: one array per column."""
        return {f"{self.prefix}c{i}": self._values(rows, name) for i, name in enumerate(self.columns)}

    def bound(self, rows: Sequence[Mapping[str, Any]]) -> tuple[TextClause, dict[str, Any]]:
        """The statement for ``rows`` and its parameters, each column that is constant in them sent once."""
        arrays = {f"{self.prefix}c{i}": self._values(rows, name) for i, name in enumerate(self.columns)}
        count = len(rows)
        params: dict[str, Any] = {}
        scalar = []
        for i, (param, values) in enumerate(arrays.items()):
            first = values[0] if values else None
            if i and values.count(first) == count:  # list.count compares in C, identity first
                params[param] = first
                scalar.append(i)
            else:
                params[param] = values
        key = frozenset(scalar)
        statement = self._variants.get(key)
        if statement is None:
            if len(self._variants) >= MAX_VARIANTS:
                return self.statement, arrays
            statement = self._variants[key] = self._statement(self._sql(key))
        return statement, params

    async def execute(self, session: AsyncSession, rows: Sequence[Mapping[str, Any]]) -> list[Any]:
        """Insert ``rows``; what RETURNING gives back, as :func:`records`."""
        statement, params = self.bound(rows)
        result = await session.execute(statement, params)
        return records(result) if self.returns else []
