"""Settings, read from ``FLOWRUNNER_*`` environment variables (and an optional TOML file).

Names follow the original flowrunner where it had one (``FLOWRUNNER_STORAGE_TYPE`` is accepted
as an alias of ``FLOWRUNNER_STORAGE``).
"""

from __future__ import annotations

import os
import tomllib
from pathlib import Path
from typing import Any, Literal

from pydantic import AliasChoices, Field, SecretStr
from pydantic_settings import BaseSettings, SettingsConfigDict

StorageKind = Literal["sqlite", "postgres", "dynamodb", "memory"]
ExecutorKind = Literal["local", "celery"]
# A Celery queue name (flow metadata `queue:`, `flowrunner worker --queues`).
QUEUE_PATTERN = r"^[A-Za-z0-9_.-]{1,64}$"


def default_data_dir() -> Path:
    """Where the embedded default keeps its database and keys (XDG data dir on Unix)."""
    base = os.environ.get("XDG_DATA_HOME") or str(Path.home() / ".local" / "share")
    return Path(base) / "flowrunner"


class Settings(BaseSettings):
    model_config = SettingsConfigDict(
        env_prefix="FLOWRUNNER_", extra="ignore", populate_by_name=True
    )

    data_dir: Path = Field(default_factory=default_data_dir)
    storage: StorageKind = Field(
        default="sqlite",
        validation_alias=AliasChoices("FLOWRUNNER_STORAGE", "FLOWRUNNER_STORAGE_TYPE"),
    )
    database_url: str | None = None
    # The SQL hot path (docs/storage.md): a run's calls on the plain driver (sqlite3, asyncpg)
    # rather than SQLAlchemy. Off only to compare the two, or to rule the fast path out.
    database_direct: bool = True

    dynamodb_endpoint: str | None = None
    dynamodb_region: str = "us-east-1"
    dynamodb_table_prefix: str = "flowrunner"

    # JavaScript sandbox limits, always on; a node may lower or raise its own timeout.
    script_timeout: float = 1.0
    script_memory_mb: int = 64
    script_workers: int = 2
    # A healthy sandbox worker is replaced (in the background, between evaluations) after
    # this many evaluations or once its resident memory passes this many MB; 0 = never.
    script_worker_max_evaluations: int = Field(default=100_000, ge=0)
    script_worker_max_rss_mb: int = Field(default=384, ge=0)
    # Sandbox workers start when scripts need them; one left idle this long is closed (0 =
    # never), so a quiet server holds no V8 isolate (~70 MB each).
    script_worker_idle_seconds: float = Field(default=300.0, ge=0)

    # Node visits per run before it is failed as an endless loop.
    max_steps: int = 10_000
    # Stored sub-flows (flow nodes naming a flow) nested deeper than this fail the node: a
    # bound at run time, beside the recursion check at save time.
    max_subflow_depth: int = Field(default=8, ge=1, le=64)

    # Plugins (docs/plugins.md): a folder of Python plugin modules, loaded at start and
    # reloaded when a file changes (watch) or on request; plugins disabled at start
    # (comma-separated names); whether installed packages' entry points are loaded.
    plugins_dir: Path | None = None
    plugins_watch: bool = True
    plugins_disabled: str = ""
    plugins_entry_points: bool = True

    # Secrets vault: Fernet keys, comma-separated, newest first (encrypts; the rest decrypt).
    # Unset: a key generated once in <data_dir>/secret.key (embedded default only).
    secret_keys: SecretStr | None = None
    # First admin, created on start when no account has this username.
    admin_username: str | None = None
    admin_password: SecretStr | None = None
    # Brute-force limits: failures per (username, client) and per client within the window.
    login_max_failures: int = 5
    login_max_failures_per_client: int = 20
    login_window_seconds: int = 300
    # Lifetime of tokens issued by POST /api/v1/login.
    login_token_ttl_seconds: int = 3600

    # HTTP server (`flowrunner serve`): loopback by default; say 0.0.0.0 to listen wider.
    host: str = "127.0.0.1"
    port: int = 8080
    # Request body limits in bytes, answered with 413 before the body is read in full.
    max_flow_bytes: int = 1_048_576
    # Per-flow limits checked when a flow is saved or validated (400 naming the path), and how
    # many flows are parsed and validated at once, off the event loop (the rest wait).
    max_flow_nodes: int = Field(default=1000, ge=1)
    max_script_bytes: int = Field(default=65_536, ge=1)
    flow_validation_workers: int = Field(default=2, ge=1, le=32)
    max_request_bytes: int = 1_048_576
    # Levels of nested arrays/objects a JSON body or WebSocket message may have (400 beyond).
    # At most 200: stored values are served again inside response models, and pydantic
    # refuses to serialize past about 254 levels.
    max_json_depth: int = Field(default=64, ge=2, le=200)
    # Runs (flowrunner.executions): parallel runs per process (the rest queue), lease time a
    # run's executor must renew within, how often expired leases are swept, how long a
    # shutdown lets running nodes finish, and the largest run input accepted.
    executor_concurrency: int = 16
    # Fair sharing between accounts: runs of one account executing at once in a process
    # (unset: half the concurrency), and the share of the sandbox workers one account may
    # hold at once (at least one worker).
    max_runs_per_account: int | None = Field(default=None, ge=1)
    script_worker_share: float = Field(default=0.5, gt=0, le=1)
    lease_ttl_seconds: float = 30.0
    recovery_interval_seconds: float = 10.0
    # Times crash recovery may resume a run that saves no checkpoint in between (a crash
    # loop) before failing it; runs created but never leased are recovered after the TTL.
    max_resume_attempts: int = Field(default=3, ge=0)
    # How long a run may go without a stored checkpoint while it runs replayable nodes only
    # (set, transform, condition, switch...: they compute from the run's state, with no
    # effect outside it); a crash in that window makes the run compute them again. 0: a
    # checkpoint after every node. Nodes with effects are always checkpointed on both sides.
    checkpoint_window_seconds: float = Field(default=0.1, ge=0)
    shutdown_grace_seconds: float = 10.0
    max_run_input_bytes: int = 1_048_576
    # Where runs execute: "local" (tasks of the API process) or "celery" (`flowrunner worker`
    # processes fed through FLOWRUNNER_BROKER_URL, redis:// or amqp://; docs/deploy.md). The
    # celery executor needs the Redis event bus (event_bus_url): live events, cross-process
    # cancel and the cluster-wide run limits go through it.
    executor: ExecutorKind = "local"
    broker_url: str | None = None
    # The Celery queue of runs whose flow names none (`queue:` in its metadata).
    default_queue: str = Field(default="flowrunner", pattern=QUEUE_PATTERN)
    # How long a run may wait in the broker before recovery assumes its message was lost and
    # enqueues it again (the run's lease meanwhile belongs to the queue; docs/deploy.md).
    queue_lease_seconds: float = Field(default=3600.0, gt=0)
    # Runs executing at once over the whole cluster, per account and per flow (unset: no
    # limit); runs beyond wait in Redis without holding a worker, other accounts' go first.
    cluster_max_runs_per_account: int | None = Field(default=None, ge=1)
    cluster_max_runs_per_flow: int | None = Field(default=None, ge=1)
    # Inbound webhook triggers (flowrunner.triggers): the largest body a hook accepts (a
    # trigger's max_body may only lower it), requests per minute per trigger and process
    # (a trigger's rate_limit replaces it), and the longest a sync trigger waits for its run.
    trigger_max_body_bytes: int = Field(default=1_048_576, ge=1)
    trigger_rate_limit_per_minute: int = Field(default=6000, ge=1)
    trigger_sync_timeout_seconds: float = Field(default=30.0, gt=0, le=300)
    # Durable waits (docs/waiting.md): a delay longer than this waits durably (the run holds
    # no slot, lease or memory and is woken by the waker, on any process, after restarts);
    # how often the waker looks for due runs; the address users reach this server at, for
    # wait_for's resume links (unset: http://<host>:<port>).
    durable_wait_threshold_seconds: float = Field(default=30.0, ge=0)
    waker_tick_seconds: float = Field(default=1.0, gt=0)
    public_url: str | None = None
    # Schedules: whether this process runs the scheduler, how often it looks for due
    # occurrences, and how many missed occurrences catch_up: all fires at most.
    scheduler_enabled: bool = True
    scheduler_tick_seconds: float = Field(default=1.0, gt=0)
    schedule_max_catch_up: int = Field(default=100, ge=1, le=10_000)
    # Size caps of a run's data, in bytes of JSON, checked before anything that big is copied:
    # one node's output (a batch: all its items together), the shared state, and a checkpoint
    # (the shared state plus every node's output). Over a cap, the node (and the run) fails.
    max_node_output_bytes: int = Field(default=8 << 20, ge=1024)
    max_shared_bytes: int = Field(default=16 << 20, ge=1024)
    max_checkpoint_bytes: int = Field(default=64 << 20, ge=1024)
    # How often an open WebSocket re-checks its token: revoked, expired or account disabled
    # closes it (code 4401) within this plus the token cache's few seconds.
    ws_auth_recheck_seconds: float = Field(default=2.0, gt=0)
    # Live events across processes: a redis:// URL selects the Redis pub/sub bus. Every Redis
    # call is bounded by the timeout; events waiting to be published are bounded by the buffer
    # (batches), beyond which they are dropped and counted (they are stored all the same).
    event_bus_url: str | None = None
    event_bus_timeout_seconds: float = Field(default=2.0, gt=0, le=60)
    event_bus_buffer: int = Field(default=1000, ge=1, le=1_000_000)

    # Retention (docs/operations.md#retention): the default policy of every account without
    # its own. Successful runs (completed) and the others (failed, canceled) each keep runs
    # for DAYS after they ended and/or the last KEEP_LAST per flow; unset keeps everything.
    # The pruner deletes in batches of RETENTION_BATCH every RETENTION_INTERVAL_SECONDS.
    retention_completed_days: float | None = Field(default=None, gt=0)
    retention_completed_keep_last: int | None = Field(default=None, ge=1)
    retention_failed_days: float | None = Field(default=None, gt=0)
    retention_failed_keep_last: int | None = Field(default=None, ge=1)
    retention_interval_seconds: float = Field(default=600.0, gt=0)
    retention_batch: int = Field(default=100, ge=1, le=1000)
    retention_enabled: bool = True

    # Prometheus metrics at /metrics (docs/operations.md). A scrape authenticates with an
    # admin account's token or with METRICS_TOKEN (a scrape-only credential, so Prometheus
    # never holds an admin token); METRICS_PUBLIC drops the check for a /metrics reachable
    # only from a private network.
    metrics_enabled: bool = True
    metrics_token: SecretStr | None = None
    metrics_public: bool = False

    # Outbound HTTP (http.request nodes; see outbound/policy.py for the SSRF rules). By
    # default loopback, private, link-local (cloud metadata) and other non-public addresses
    # are refused; ALLOW_PRIVATE opens them all, ALLOW lists CIDRs and host names to open.
    http_allow_private: bool = False
    http_allow: str = ""
    # A response body past this many bytes fails the node while it is read (never buffered).
    http_max_response_bytes: int = Field(default=10 << 20, ge=1)
    # A request's default timeout (a node's `timeout` param overrides it), and how many
    # connections the process's shared client keeps open at once.
    http_timeout_seconds: float = Field(default=30.0, gt=0)
    http_max_connections: int = Field(default=100, ge=1)

    # Outbound webhooks (see docs/webhooks.md). The retry schedule is the delay before each
    # retry (comma-separated durations: 5s, 5m, 2h); after the last one the delivery is
    # dead-lettered. Each delay is drawn from [0, d] (full jitter), Retry-After can lengthen it.
    webhook_retry_schedule: str = "5s,5m,30m,2h,5h,10h,10h"
    webhook_timeout_seconds: float = Field(default=10.0, gt=0, le=300)
    # One slow receiver cannot stall the rest: at most this many requests in flight to one
    # endpoint, this many in all, and this many sent per second by the process.
    webhook_concurrency_per_endpoint: int = Field(default=4, ge=1, le=100)
    webhook_max_in_flight: int = Field(default=64, ge=1, le=10_000)
    webhook_rate_per_second: float = Field(default=200.0, gt=0)
    # How often the dispatcher looks for due deliveries when nothing woke it (events of this
    # process wake it at once; retries and other processes' events wait at most this long).
    webhook_poll_seconds: float = Field(default=1.0, gt=0, le=60)
    # An endpoint that has failed every delivery for this long is disabled (audited).
    webhook_disable_after_seconds: float = Field(default=5 * 86400, gt=0)
    # Rotating an endpoint's secret keeps signing with the old one too for this long.
    webhook_rotation_grace_seconds: float = Field(default=86400, ge=0)

    # Tokens (prompt + completion) an account's llm nodes may use per calendar month (UTC);
    # a call that could take the account past it fails with llm_budget_exceeded. None: no budget.
    llm_monthly_token_budget: int | None = Field(default=None, ge=0)

    # MCP servers (the `mcp` node; docs/nodes/mcp.md). A flow may start a stdio MCP server
    # only with a command on this admin list (comma-separated; an entry may carry leading
    # arguments, "python /opt/mcp/files.py", which the node's args must then start with);
    # empty: no stdio servers at all. HTTP servers go through the SSRF rules above.
    mcp_stdio_commands: str = ""
    # An operation's default timeout (connecting included; the node's `timeout` overrides
    # it), and the largest result a node accepts, in bytes of JSON.
    mcp_timeout_seconds: float = Field(default=30.0, gt=0)
    mcp_max_result_bytes: int = Field(default=1 << 20, ge=1024)
    # MCP sessions open at once per process (each stdio one is a child process), each
    # account at most half; pooled sessions (`pool: true`) kept per account and server, at
    # most this many in all, each closed after this long unused.
    mcp_max_sessions: int = Field(default=32, ge=1)
    mcp_pool_size: int = Field(default=16, ge=1)
    mcp_pool_idle_seconds: float = Field(default=300.0, gt=0)

    def disabled_plugins(self) -> list[str]:
        return [n.strip() for n in self.plugins_disabled.split(",") if n.strip()]

    def runs_per_account(self) -> int:
        if self.max_runs_per_account is not None:
            return min(self.max_runs_per_account, self.executor_concurrency)
        return max(1, self.executor_concurrency // 2)

    def script_workers_per_account(self) -> int:
        return max(1, int(self.script_workers * self.script_worker_share))

    def sqlite_url(self) -> str:
        return f"sqlite+aiosqlite:///{self.data_dir / 'flowrunner.db'}"

    def resolved_database_url(self) -> str | None:
        """The SQL URL to use: the explicit one, else the embedded SQLite file."""
        if self.database_url:
            return self.database_url
        if self.storage == "sqlite":
            return self.sqlite_url()
        return None


def load_settings(config_file: Path | None = None, **overrides: Any) -> Settings:
    """Settings from the environment, a TOML file under ``[flowrunner]`` and explicit overrides.

    Precedence: overrides > environment > file > defaults.
    """
    file_values: dict[str, Any] = {}
    path = config_file or (
        Path(os.environ["FLOWRUNNER_CONFIG"]) if "FLOWRUNNER_CONFIG" in os.environ else None
    )
    if path is not None:
        with path.open("rb") as fh:
            file_values = dict(tomllib.load(fh).get("flowrunner", {}))
    env_keys = {
        name for name in Settings.model_fields if f"FLOWRUNNER_{name.upper()}" in os.environ
    }
    merged = {k: v for k, v in file_values.items() if k not in env_keys}
    merged.update(overrides)
    return Settings(**merged)
