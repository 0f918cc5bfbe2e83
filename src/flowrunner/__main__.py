"""``python -m flowrunner``: the same as the ``flowrunner`` command."""

from flowrunner.cli.app import main

main()
