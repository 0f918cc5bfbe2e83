"""Flows that several end-to-end modules run."""

STEPS = """metadata: {name: Steps}
nodes:
  greet:
    type: set
    params: {values: {greeting: "hi ${input.name}"}}
    next: {default: say}
  say: {type: log, params: {message: "${shared.greeting}"}, next: {default: nap}}
  nap: {type: delay, params: {duration: "${shared.nap}"}, next: {default: done}}
  done: {type: set, params: {values: {done: true}}}
"""
"""Greets ``name``, logs it, naps ``nap`` (seconds or a duration; both from the run input),
then sets ``done``: the nap keeps a run going while a test watches or disturbs it."""
