"""The Celery application both sides share: API processes publish run tasks, workers consume.

One task, ``flowrunner.run(account_id, execution_id)``. Its message only wakes a worker: the
store is the truth (the execution row and its lease), so a duplicate message (a broker
redelivery, a recovery re-enqueue) finds the run leased or ended and is dropped. Messages are
acknowledged late (``acks_late``: once the run ended or was handed back) and given back when
the worker dies (``reject_on_worker_lost``), one at a time per worker slot (prefetch 1) so a
busy worker does not sit on runs another could take. Needs ``pip install 'flowrunner[celery]'``.
"""

from __future__ import annotations

from typing import Any

from flowrunner.config import Settings
from flowrunner.errors import ExecutionError

try:
    from celery import Celery
except ModuleNotFoundError as exc:  # pragma: no cover - depends on the install
    raise ExecutionError(
        "the celery executor needs celery: pip install 'flowrunner[celery]'"
    ) from exc

RUN_TASK = "flowrunner.run"


def celery_app(settings: Settings) -> Celery:
    """The Celery app of ``settings.broker_url`` (redis:// or amqp://), not the global one."""
    if not settings.broker_url:
        raise ExecutionError("FLOWRUNNER_EXECUTOR=celery needs FLOWRUNNER_BROKER_URL")
    if not settings.event_bus_url:
        raise ExecutionError(
            "FLOWRUNNER_EXECUTOR=celery needs FLOWRUNNER_EVENT_BUS_URL (a redis:// URL): live "
            "events, cancels and the cluster run limits cross processes through it"
        )
    app = Celery("flowrunner", broker=settings.broker_url, set_as_current=False)
    transport: dict[str, Any] = {}
    if settings.broker_url.startswith(("redis://", "rediss://")):
        # Redis has no consumer liveness: a message a dead worker held comes back after this.
        # The run's lease brings it back sooner (recovery); a late copy finds it leased or
        # ended and is dropped, so this only has to outlast the broker's own bookkeeping.
        transport["visibility_timeout"] = settings.queue_lease_seconds
    else:
        transport["confirm_publish"] = True  # a publish returns once RabbitMQ has it
    app.conf.update(
        task_acks_late=True,
        task_reject_on_worker_lost=True,
        task_ignore_result=True,
        task_serializer="json",
        accept_content=["json"],
        task_default_queue=settings.default_queue,
        task_create_missing_queues=True,
        worker_prefetch_multiplier=1,
        worker_hijack_root_logger=False,
        worker_send_task_events=False,
        broker_transport_options=transport,
        # After a broker outage, tasks running on the lost connection go on: their run's
        # lease, not the broker, decides who runs it, and the broker's copy of the message
        # comes back and is dropped. Celery's "reduce the prefetch, restore it task by task"
        # is off: with the threads pool the restore sends a synchronous basic.qos from the
        # task's thread (acks run there) while the consumer thread reads the same AMQP
        # connection; the reply can go to the wrong reader, and every later ack then waits on
        # the QoS lock: the worker holds its messages and runs nothing more until restarted
        # (seen with RabbitMQ killed and restarted, tests/e2e/test_celery_workers.py).
        worker_cancel_long_running_tasks_on_connection_loss=False,
        worker_enable_prefetch_count_reduction=False,
        broker_connection_retry_on_startup=True,
        broker_connection_max_retries=None,  # a broker outage is waited out, never fatal
        # A publish fails within about a second; the executor keeps it and retries (below).
        task_publish_retry_policy={
            "max_retries": 3,
            "interval_start": 0,
            "interval_step": 0.2,
            "interval_max": 0.5,
        },
    )
    return app
