"""The ``flowrunner`` command line (Typer)."""
