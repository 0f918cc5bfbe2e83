"""The JavaScript sandbox: warm V8 isolates in worker processes, with hard limits.

Public surface: :class:`Sandbox`, :class:`ScriptResult`, :class:`LogLine`. See
``docs/scripting.md`` for what scripts can use and how isolation works.
"""

from flowrunner.scripting.sandbox import LogLine, Sandbox, ScriptResult

__all__ = ["LogLine", "Sandbox", "ScriptResult"]
