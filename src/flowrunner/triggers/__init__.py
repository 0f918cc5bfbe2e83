"""What starts runs besides the API: inbound webhook triggers and schedules.

- ``records`` / ``repository``: stored triggers (over the key-value store);
- ``service``: the API's operations and the sync with a flow's declared ``triggers:``;
- ``verification`` / ``requests`` / ``inbound``: the public hook route's checks and run start;
- ``occurrences`` / ``scheduler``: when schedules are due, and the task that fires them.
"""

from flowrunner.triggers.inbound import HookAnswer, HookLimits, HookRefused, InboundHooks
from flowrunner.triggers.records import Trigger
from flowrunner.triggers.repository import TriggerRepository
from flowrunner.triggers.requests import HookRequest
from flowrunner.triggers.scheduler import Fired, Scheduler
from flowrunner.triggers.service import TriggerService

__all__ = [
    "Fired",
    "HookAnswer",
    "HookLimits",
    "HookRefused",
    "HookRequest",
    "InboundHooks",
    "Scheduler",
    "Trigger",
    "TriggerRepository",
    "TriggerService",
]
