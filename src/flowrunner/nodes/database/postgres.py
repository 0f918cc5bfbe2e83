"""The ``postgres`` node: SQL on a PostgreSQL database the flow names.

Connection: ``dsn`` (``postgresql://user:pass@host:5432/db?sslmode=require``, typically
``${secrets.PG_DSN}``), or the original's ``host``/``port``/``user``/``password``/``dbname``
with ``sslmode`` (default ``prefer``; the original forced ``disable``).

Operations:

- ``execute``: ``query`` with ``args`` bound as ``$1, $2...`` (never formatted into the
  text). A statement returning rows gives ``{rows: [{column: value}], row_count}``; any other
  ``{rows_affected}``.
- ``transaction``: ``statements: [{query, args}]`` in one transaction, all or nothing;
  ``{results: [<execute output per statement>]}``.
- ``get``/``set``/``delete``/``list``/``query``: the original's key-value operations on the
  table ``table_name`` (default ``flowrunner_store``), created when missing (``kv_ops``).

Every statement runs under ``statement_timeout`` (default 30 s) and may return at most
``max_rows`` rows (default 1000; more fails the node rather than filling memory). Cancelling
the run cancels the statement on the server.
"""

from __future__ import annotations

import re
from collections.abc import AsyncIterator, Mapping
from contextlib import asynccontextmanager
from typing import TYPE_CHECKING, Any
from urllib.parse import parse_qsl, quote, unquote, urlencode, urlsplit, urlunsplit

from flowrunner.durations import DURATION_PATTERN, parse_duration
from flowrunner.errors import ExecutionError
from flowrunner.fairness import ACCOUNT_ID
from flowrunner.nodes.base import Call, DefinedNode, DefinedNodeType
from flowrunner.nodes.database.pg_kv import PgTable
from flowrunner.nodes.database.pg_pools import DEFAULT_STATEMENT_TIMEOUT_MS, describe, pools
from flowrunner.nodes.database.pg_values import to_json_row
from flowrunner.nodes.kv_ops import (
    KV_OPERATIONS,
    KV_PARAMS,
    KeyMissing,
    OperationError,
    needs,
    run_kv_operation,
)

if TYPE_CHECKING:
    import asyncpg

DEFAULT_TABLE = "flowrunner_store"
DEFAULT_STATEMENT_TIMEOUT = DEFAULT_STATEMENT_TIMEOUT_MS / 1000
DEFAULT_CONNECT_TIMEOUT = 10.0
DEFAULT_MAX_ROWS = 1000
MAX_ROWS_LIMIT = 100_000
MAX_STATEMENTS = 100
SSL_MODES = ["disable", "allow", "prefer", "require", "verify-ca", "verify-full"]
TABLE_NAME = re.compile(r"^[A-Za-z_][A-Za-z0-9_]{0,62}(\.[A-Za-z_][A-Za-z0-9_]{0,62})?$")


class PostgresNode(DefinedNode):
    __slots__ = ()

    actions = frozenset()

    async def work(self, call: Call) -> Any:
        params = call.params
        operation = str(params.get("operation") or "execute")
        dsn = self._dsn(params)
        try:
            return await self._work(dsn, operation, params)
        except ExecutionError as exc:
            # Whatever a driver message quotes, never the password or the DSN holding it.
            raise self._fail(
                _scrub(str(exc).removeprefix(f"node '{self.node_id}': "), dsn)
            ) from exc

    async def _work(self, dsn: str, operation: str, params: Mapping[str, Any]) -> Any:
        import asyncpg  # here: the node type loads with every server, few run it

        where = describe(dsn)
        try:
            async with self._connection(dsn, params) as conn:
                if operation == "execute":
                    return await self._execute(conn, params, params)
                if operation == "transaction":
                    return await self._transaction(conn, params)
                table = PgTable(conn, _table_name(params))
                known = pools().tables.setdefault((ACCOUNT_ID.get(), dsn), set())
                await table.ensure(known)
                try:
                    return await run_kv_operation(table, operation, params)
                except asyncpg.UndefinedTableError:
                    known.discard(table.name)  # dropped since: the next run creates it again
                    raise
        except (OperationError, KeyMissing) as exc:
            raise self._fail(f"{operation}: {exc.args[0] if exc.args else exc}") from exc
        except asyncpg.QueryCanceledError as exc:
            if "statement timeout" not in str(exc):
                raise self._fail(f"{operation}: the statement was cancelled: {exc}") from exc
            raise self._fail(
                f"{operation}: the statement ran longer than statement_timeout "
                f"({_seconds(params, 'statement_timeout', DEFAULT_STATEMENT_TIMEOUT):g}s) and was "
                "cancelled"
            ) from exc
        except (
            asyncpg.InvalidPasswordError,
            asyncpg.InvalidAuthorizationSpecificationError,
        ) as exc:
            raise self._fail(f"authentication to PostgreSQL at {where} failed: {exc}") from exc
        except asyncpg.PostgresError as exc:
            raise self._fail(f"{operation}: PostgreSQL error {exc.sqlstate}: {exc}") from exc
        except (asyncpg.InterfaceError, ValueError) as exc:  # incl. bad connection settings
            raise self._fail(f"{operation}: {exc}") from exc
        except (OSError, TimeoutError) as exc:
            why = "timed out" if isinstance(exc, TimeoutError) else (exc.strerror or str(exc))
            raise self._fail(f"cannot connect to PostgreSQL at {where}: {why}") from exc

    @asynccontextmanager
    async def _connection(
        self, dsn: str, params: Mapping[str, Any]
    ) -> AsyncIterator[asyncpg.Connection]:
        connect_timeout = _seconds(params, "connect_timeout", DEFAULT_CONNECT_TIMEOUT)
        pool = await pools().get(ACCOUNT_ID.get(), dsn)
        ms = int(_seconds(params, "statement_timeout", DEFAULT_STATEMENT_TIMEOUT) * 1000)
        # One transaction per node; another statement_timeout than the connection's is set
        # for this transaction alone (SET LOCAL).
        async with pool.acquire(timeout=connect_timeout) as conn, conn.transaction():
            if ms != DEFAULT_STATEMENT_TIMEOUT_MS:
                await conn.execute(f"SET LOCAL statement_timeout = {max(ms, 1)}")
            yield conn

    async def _execute(
        self, conn: asyncpg.Connection, statement: Mapping[str, Any], params: Mapping[str, Any]
    ) -> dict[str, Any]:
        query = statement.get("query")
        if not isinstance(query, str) or not query.strip():
            raise OperationError("needs 'query' (SQL text, with $1, $2... for args)")
        args = statement.get("args") or []
        if not isinstance(args, list):
            raise OperationError(f"args must be a list, got {type(args).__name__}")
        max_rows = _max_rows(params)
        prepared = await conn.prepare(query)
        if not prepared.get_attributes():
            await prepared.fetch(*args)
            return {"rows_affected": _affected(prepared.get_statusmsg())}
        cursor = await prepared.cursor(*args)
        rows = await cursor.fetch(max_rows + 1)
        if len(rows) > max_rows:
            raise OperationError(
                f"the query returned more than max_rows ({max_rows}) rows: "
                "add a LIMIT or raise max_rows"
            )
        return {"rows": [to_json_row(r) for r in rows], "row_count": len(rows)}

    async def _transaction(
        self, conn: asyncpg.Connection, params: Mapping[str, Any]
    ) -> dict[str, Any]:
        statements = params.get("statements")
        if not isinstance(statements, list) or not statements:
            raise OperationError("transaction needs 'statements': a list of {query, args}")
        if len(statements) > MAX_STATEMENTS:
            raise OperationError(f"at most {MAX_STATEMENTS} statements per transaction")
        import asyncpg

        results = []
        for index, statement in enumerate(statements):
            if not isinstance(statement, Mapping):
                raise OperationError(f"statements[{index}] must be a mapping with query and args")
            try:
                results.append(await self._execute(conn, statement, params))
            except (OperationError, asyncpg.PostgresError) as exc:
                # The whole transaction rolls back; say which statement broke it.
                text = f"statements[{index}]: {exc}"
                if isinstance(exc, asyncpg.PostgresError):
                    text = f"statements[{index}]: PostgreSQL error {exc.sqlstate}: {exc}"
                raise OperationError(text + " (nothing was committed)") from exc
        return {"results": results}

    def _dsn(self, params: Mapping[str, Any]) -> str:
        dsn = params.get("dsn") or params.get("connection_string")
        sslmode = params.get("sslmode")
        if dsn:
            text = str(dsn)
            if urlsplit(text).scheme not in ("postgres", "postgresql"):
                raise self._fail("dsn must be a postgresql:// URL")
            if sslmode:  # the param wins over an sslmode in the DSN
                parts = urlsplit(text)
                kept = [(k, v) for k, v in parse_qsl(parts.query) if k != "sslmode"]
                text = urlunsplit(parts._replace(query=urlencode([*kept, ("sslmode", sslmode)])))
            return text
        if not params.get("host"):
            raise self._fail("give dsn, or host (with port, user, password, dbname)")
        user = quote(str(params.get("user") or "postgres"), safe="")
        password = params.get("password")
        auth = f"{user}:{quote(str(password), safe='')}" if password else user
        host = str(params["host"])
        host = f"[{host}]" if ":" in host else host
        dbname = quote(str(params.get("dbname") or params.get("database") or "postgres"), safe="")
        query = urlencode({"sslmode": sslmode or "prefer"})
        port = params.get("port") or 5432
        if not str(port).isdigit():
            raise self._fail(f"port must be a number, got {port!r}")
        return f"postgresql://{auth}@{host}:{int(port)}/{dbname}?{query}"

    def _fail(self, message: str) -> ExecutionError:
        return ExecutionError(f"node '{self.node_id}': {message}", node_id=self.node_id)


def _scrub(text: str, dsn: str) -> str:
    """``text`` without the DSN or its password (in either spelling of the password)."""
    try:
        password = urlsplit(dsn).password
    except ValueError:
        password = None
    for secret in (dsn, password, unquote(password) if password else None):
        if secret and len(secret) >= 3:
            text = text.replace(secret, "***")
    return text


def _table_name(params: Mapping[str, Any]) -> str:
    name = str(params.get("table_name") or DEFAULT_TABLE)
    if not TABLE_NAME.match(name):
        raise OperationError(
            f"table_name {name!r} must be a plain SQL name (letters, digits, _; schema.table)"
        )
    return name


def _seconds(params: Mapping[str, Any], name: str, default: float) -> float:
    value = params.get(name)
    if value is None:
        return default
    try:
        seconds = parse_duration(value)
    except ValueError as exc:
        raise OperationError(f"{name}: {exc}") from None
    return seconds if seconds > 0 else default


def _max_rows(params: Mapping[str, Any]) -> int:
    value = params.get("max_rows", DEFAULT_MAX_ROWS)
    if isinstance(value, bool) or not isinstance(value, int) or not 1 <= value <= MAX_ROWS_LIMIT:
        raise OperationError(f"max_rows must be a whole number from 1 to {MAX_ROWS_LIMIT}")
    return value


def _affected(status: str | None) -> int:
    """Rows affected, from a command tag such as ``UPDATE 3`` or ``INSERT 0 1``."""
    last = (status or "").rsplit(" ", 1)[-1]
    return int(last) if last.isdigit() else 0


_DURATION = {"type": ["number", "string"], "pattern": DURATION_PATTERN}
_STATEMENT = {
    "type": "object",
    "properties": {"query": {"type": "string", "minLength": 1}, "args": {"type": "array"}},
    "required": ["query"],
    "additionalProperties": False,
}

POSTGRES = DefinedNodeType(
    "postgres",
    "SQL on a PostgreSQL database (dsn or host/port/user/password/dbname, from secrets): "
    "execute a query with bound args, a transaction of statements, or the original's "
    "key-value operations on a table.",
    PostgresNode,
    {
        "type": "object",
        "properties": {
            "operation": {"enum": ["execute", "transaction", *KV_OPERATIONS]},
            "dsn": {"type": "string", "minLength": 1},
            "connection_string": {"type": "string", "minLength": 1},
            "host": {"type": "string", "minLength": 1},
            "port": {"type": ["integer", "string"]},
            "user": {"type": "string"},
            "password": {"type": "string"},
            "dbname": {"type": "string"},
            "database": {"type": "string"},
            "sslmode": {"enum": SSL_MODES},
            "query": {"type": "string", "minLength": 1},
            "args": {"type": "array"},
            "statements": {
                "type": "array",
                "minItems": 1,
                "maxItems": MAX_STATEMENTS,
                "items": _STATEMENT,
            },
            "table_name": {"type": "string", "pattern": TABLE_NAME.pattern},
            **KV_PARAMS,
            "statement_timeout": _DURATION,
            "connect_timeout": _DURATION,
            "max_rows": {"type": "integer", "minimum": 1, "maximum": MAX_ROWS_LIMIT},
        },
        "required": ["operation"],
        "additionalProperties": False,
        "anyOf": [
            {"required": ["dsn"]},
            {"required": ["connection_string"]},
            {"required": ["host"]},
        ],
        "allOf": [
            needs("execute", "query"),
            needs("transaction", "statements"),
            needs("get", "key"),
            needs("set", "key", "value"),
            needs("delete", "key"),
        ],
    },
)
