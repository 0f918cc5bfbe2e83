"""PostgreSQL's hot path: the calls every run makes, on a plain asyncpg pool.

Through SQLAlchemy's async layer a small PostgreSQL transaction cost ~1.3 ms of CPU (building
and compiling the statement, the pool's checkout and reset-on-return ``ROLLBACK``, one round
trip each for ``BEGIN``, every statement and ``COMMIT``): 18-26 ms of server CPU a run. Here
each call is ONE prepared statement on an asyncpg connection, run in its own implicit
transaction: a single round trip. Calls that write several tables (a step's events,
checkpoint, position and webhook outbox; a final status with its lease release, checkpoint
deletion and outbox) are one statement of data-modifying ``WITH`` clauses, atomic as any
statement is.

The implementations are subclasses of the SQLAlchemy ones that override only the hot calls,
as ``direct``'s SQLite ones do: ``PgExecutions`` (create, get, update, the events and
checkpoint of a step, leases), ``PgFlows.get`` and ``PgSecrets.list`` (first page). The store
picks them once, when it is opened on a PostgreSQL URL (``SqlStore(..., direct=False)`` keeps
everything on SQLAlchemy). Values are written exactly as SQLAlchemy writes them (JSON text from
``jsontext``, NULL for None, aware UTC times), so either path reads the other's rows; the
conformance suite runs on PostgreSQL both ways.

Modules are imported by name (``direct.postgres.connection`` …), as in ``direct``.
"""
