"""The JavaScript sandbox: warm V8 isolates in worker processes, with hard limits.

Public surface: :class:`Sandbox` (the real :class:`ScriptHost`, the seam the flow layers
use), :class:`ScriptResult`, :class:`LogLine`. See
``docs/scripting.md`` for what scripts can use and how isolation works.
"""

from flowrunner.scripting.host import LogLine, ScriptHost, ScriptResult
from flowrunner.scripting.sandbox import Sandbox

__all__ = ["LogLine", "Sandbox", "ScriptHost", "ScriptResult"]
