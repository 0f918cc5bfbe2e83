"""Flows the dashboard's browser tests draw and run."""

# Every kind of thing the graph draws: a start node, a retry badge, a batch badge, an error
# edge, an action other than default, and END.
BRANCHY = """metadata:
  name: Order triage
  description: Checks an order and routes it
nodes:
  check:
    type: transform
    retry: {max_retries: 2, wait: 10ms}
    params:
      script: |
        return { total: input.total, big: input.total > 100 };
    next: {default: route, error: alert}
  route:
    type: condition
    params:
      condition_script: return input.big;
    next: {true: notify, false: archive}
  notify:
    type: transform
    batch: {items: "${[1, 2, 3]}", strategy: parallel, max_parallel: 2}
    params:
      script: return item * 10;
    next: {default: END}
  archive:
    type: set
    params:
      values: {archived: true}
  alert:
    type: log
    params:
      message: "check failed"
"""

# The second node sleeps for an hour: a run stays at it until it is canceled.
SLOW = """metadata:
  name: Slow one
nodes:
  first:
    type: transform
    params:
      script: |
        return { hello: input.name };
    next: {default: wait}
  wait:
    type: delay
    params:
      duration: 1h
    next: {default: after}
  after:
    type: set
    params:
      values: {done: true}
"""

# The second node throws: the run fails there.
FAILING = """metadata:
  name: Fails at boom
nodes:
  ok:
    type: set
    params:
      values: {fine: true}
    next: {default: boom}
  boom:
    type: transform
    params:
      script: throw new Error("the answer was not 42");
    next: {default: never}
  never:
    type: set
    params:
      values: {reached: true}
"""

QUICK = """metadata:
  name: Quick
nodes:
  only:
    type: set
    params:
      values: {ok: true}
"""

# Valid, with one warning: `island` is never reached from the start.
WARNED = """metadata:
  name: Has a warning
  start: main
nodes:
  main:
    type: set
    params:
      values: {ok: true}
  island:
    type: set
    params:
      values: {never: true}
"""
