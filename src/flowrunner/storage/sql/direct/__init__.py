"""SQLite's hot path: the calls every run makes, on a plain ``sqlite3`` connection.

Through SQLAlchemy's async layer a small SQLite transaction costs 1.5-3 ms of CPU: aiosqlite
moves every cursor operation (begin, execute, fetch, close, commit, the pool's reset) to its
thread and back, and each hop wakes the event loop. Here a transaction is one function run
inline or on one dedicated thread that owns one connection, so it costs at most one hop
whatever it does (``connection.DirectSqlite``, with group commit).

The implementations are subclasses of the SQLAlchemy ones that override only the hot calls:
``DirectExecutions`` (create, get, update, events and checkpoints of a step, leases),
``DirectFlows.get`` and ``DirectSecrets.list`` (first page), which every run reads. The store
picks them once, when it is opened on a SQLite file (``SqlStore(..., direct=False)`` keeps
everything on SQLAlchemy). Values are written exactly as SQLAlchemy's tables write them (JSON
text, ``sqlite.time_text``, NULL for None), so either path reads the other's rows; the
conformance suite runs on SQLite both ways.

The modules are imported by name (``direct.connection``, ``direct.executions``,
``direct.reads``; ``direct.rows``, the row codec PostgreSQL's path shares), not from here:
``database.py`` needs the connection before the stores that build on it exist.
"""
