"""Flow documents the client tests push to the server."""

from __future__ import annotations


def steps(name: str, nap: float = 0.05) -> str:
    """Four nodes, one log line, a short nap: enough for live lines and a final output."""
    return f"""metadata: {{name: {name}}}
nodes:
  greet:
    type: set
    params: {{values: {{greeting: "hi ${{input.name}}"}}}}
    next: {{default: say}}
  say: {{type: log, params: {{message: "${{shared.greeting}}"}}, next: {{default: nap}}}}
  nap: {{type: delay, params: {{duration: {nap}}}, next: {{default: done}}}}
  done: {{type: set, params: {{values: {{done: true}}}}}}
"""


def failing(name: str) -> str:
    return f"""metadata: {{name: {name}}}
nodes:
  ok: {{type: set, params: {{values: {{a: 1}}}}, next: {{default: boom}}}}
  boom: {{type: fail, params: {{message: "no luck"}}}}
"""


def napping(name: str, seconds: float) -> str:
    return f"""metadata: {{name: {name}}}
nodes:
  nap: {{type: delay, params: {{duration: {seconds}}}}}
"""


def uses_secret(name: str) -> str:
    return f"""metadata: {{name: {name}}}
nodes:
  say: {{type: log, params: {{message: "token is ${{secrets.SHOP_TOKEN}}"}}}}
"""
