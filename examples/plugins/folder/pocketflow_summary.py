"""A PocketFlow node, unchanged, served as the ``local.shout`` node type (blocking: it runs in
a thread, as PocketFlow's synchronous nodes expect)."""

from pocketflow import Node

from flowrunner.plugins import Plugin
from flowrunner.plugins.pocketflow import pocketflow_type


class Shout(Node):
    """Upper-cases shared['text'] into shared['shouted']."""

    def prep(self, shared):
        return shared.get("text", self.params.get("text", ""))

    def exec(self, text):
        return text.upper() + "!"

    def post(self, shared, prep_res, exec_res):
        shared["shouted"] = exec_res
        return "default"


plugin = Plugin(
    name="pocketflow_summary",
    version="1.0.0",
    node_types=[pocketflow_type(Shout, "local.shout", max_retries=2)],
)
