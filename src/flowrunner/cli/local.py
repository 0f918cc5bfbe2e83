"""Commands that work on flow files with no server: ``validate``, ``run`` and ``schema``."""

from __future__ import annotations

import json
import math
import os
import uuid
from collections.abc import Mapping
from enum import StrEnum
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

import typer
from rich.console import Console
from rich.markup import escape

from flowrunner.cli.problems import render_problems, summary
from flowrunner.cli.progress import ProgressView
from flowrunner.cli.run_secrets import collect_secrets
from flowrunner.errors import DefinitionError, ExecutionError, FlowrunnerError, NodeFailed

if TYPE_CHECKING:
    from flowrunner.config import Settings
    from flowrunner.definition import (
        FlowDefinition,
    )
    from flowrunner.engine import RunResult
    from flowrunner.plugins import NodeTypeRegistry
    from flowrunner.scripting import Sandbox
    from flowrunner.secrets import Masker


class OutputFormat(StrEnum):
    pretty = "pretty"
    json = "json"


def _read(path: Path) -> str:
    try:
        return path.read_text(encoding="utf-8")
    except OSError as exc:
        raise typer.BadParameter(f"cannot read {path}: {exc.strerror}") from exc
    except UnicodeDecodeError as exc:
        raise typer.BadParameter(f"{path} is not UTF-8 text") from exc


def parse_input(raw: str | None) -> Any:
    """The run input from ``--input``: inline JSON, or ``@path`` to a JSON file."""
    if raw is None:
        return {}
    text = raw
    if raw.startswith("@"):
        text = _read(Path(raw[1:]))
    try:
        return json.loads(text)
    except json.JSONDecodeError as exc:
        raise typer.BadParameter(
            f"not valid JSON ({exc.msg} at line {exc.lineno} column {exc.colno})",
            param_hint="--input",
        ) from exc


def _to_json(value: Any) -> str:
    return json.dumps(_finite(value), indent=2, default=str, ensure_ascii=False, allow_nan=False)


def _finite(value: Any) -> Any:
    """NaN and ±Infinity (``.nan``/``.inf`` in YAML) as null, as the server stores them:
    ``Infinity`` is not JSON, and ``--output json`` is read by JSON parsers."""
    if isinstance(value, float):
        return value if math.isfinite(value) else None
    if isinstance(value, Mapping):
        return {k: _finite(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_finite(v) for v in value]
    return value


def _sandbox(settings: Settings | None = None) -> Sandbox:
    """One sandbox worker is plenty for a single local run; limits come from settings."""
    from flowrunner.config import load_settings
    from flowrunner.scripting import Sandbox

    settings = settings or load_settings()
    return Sandbox(workers=1, timeout=settings.script_timeout, memory_mb=settings.script_memory_mb)


def validate(
    files: Annotated[list[Path], typer.Argument(help="Flow files to check.")],
) -> None:
    """Check flow files; print every problem with its line:column. Exit 1 on any error."""
    import asyncio

    if not asyncio.run(_validate_all(files, Console(stderr=True, soft_wrap=True))):
        raise typer.Exit(1)


async def _validate_all(files: list[Path], out: Console) -> bool:
    from flowrunner.definition import validate_flow

    ok = True
    registry = _registry(out)
    # The sandbox parses scripts and JavaScript expressions, so their syntax errors are found.
    async with _sandbox() as sandbox:
        for path in files:
            text = _read(path)
            problems = validate_flow(
                text,
                source=str(path),
                base_path=path.parent,
                scripts=sandbox,
                registry=registry,
            )
            render_problems(out, problems, source_name=str(path), text=text)
            if any(p.severity == "error" for p in problems):
                ok = False
                out.print(f"[red]✗[/] {escape(str(path))}: {summary(problems)}", highlight=False)
            else:
                out.print(
                    f"[green]✓[/] {escape(str(path))}: valid ({summary(problems)})",
                    highlight=False,
                )
    return ok


def _registry(console: Console, settings: Settings | None = None) -> NodeTypeRegistry:
    """Built-ins and the plugins the server would load (its settings); a broken plugin is
    a warning line, not a failure of the command."""
    from flowrunner.config import load_settings
    from flowrunner.plugins import plugin_manager

    manager = plugin_manager(settings or load_settings())
    for status in manager.plugins():
        if status.error:
            console.print(
                f"[yellow]warning:[/] plugin {escape(status.name)}: {escape(status.error)}",
                highlight=False,
            )
    return manager.current()


def _load(
    path: Path, console: Console, sandbox: Sandbox, registry: NodeTypeRegistry
) -> FlowDefinition:
    from flowrunner.definition import load_flow

    text = _read(path)
    try:
        definition = load_flow(
            text, source=str(path), base_path=path.parent, scripts=sandbox, registry=registry
        )
    except DefinitionError as exc:
        render_problems(console, exc.problems, source_name=str(path), text=text)
        console.print(f"[red]✗[/] {escape(str(path))}: {summary(exc.problems)}", highlight=False)
        raise typer.Exit(1) from exc
    render_problems(console, definition.warnings, source_name=str(path), text=text)
    return definition


async def _execute(
    path: Path, run_input: Any, console: Console, secrets: dict[str, Any], masker: Masker
) -> RunResult:
    from flowrunner.config import load_settings
    from flowrunner.definition import compile_flow
    from flowrunner.executions.run_kv import local_kv
    from flowrunner.nodes.connections import close_connections
    from flowrunner.nodes.store import RUN_KV

    settings = load_settings()
    async with _sandbox(settings) as sandbox:
        registry = _registry(console, settings)
        definition = _load(path, console, sandbox, registry)
        # The same step limit as on the server (FLOWRUNNER_MAX_STEPS).
        compiled = compile_flow(
            definition,
            registry=registry,
            scripts=sandbox,
            base_path=path.parent,
            max_steps=settings.max_steps,
        )
        # The same keys as a server run's; a file has no stored flow id or version.
        execution = {
            "id": str(uuid.uuid4()),
            "flow_id": None,
            "flow_version": None,
            "flow": definition.metadata.name,
        }
        # store nodes: the configured database under the local account (executions.run_kv).
        async with local_kv(settings) as kv:
            try:
                with ProgressView(console, mask=masker.mask_text) as view:
                    return await compiled.run(
                        run_input,
                        observer=view,
                        execution=execution,
                        secrets=secrets,
                        scoped={RUN_KV: kv},
                    )
            finally:
                await close_connections()  # the database nodes' pools, the pooled MCP sessions


def run(
    file: Annotated[Path, typer.Argument(help="The flow file to run.")],
    input_: Annotated[
        str | None,
        typer.Option("--input", "-i", help="Run input: JSON text, or @file.json."),
    ] = None,
    output: Annotated[
        OutputFormat, typer.Option("--output", "-o", help="How to print the result.")
    ] = OutputFormat.pretty,
    secrets_file: Annotated[
        Path | None,
        typer.Option(
            "--secrets-file",
            help="Secrets for ${secrets.NAME}: a dotenv file (KEY=VALUE lines) or a JSON object.",
        ),
    ] = None,
    secret: Annotated[
        list[str] | None,
        typer.Option(
            "--secret", "-s", help="One secret as KEY=VALUE (repeatable; wins over the file)."
        ),
    ] = None,
) -> None:
    """Run a flow file locally, showing nodes as they start and finish.

    Secrets also come from FLOWRUNNER_SECRET_<NAME> environment variables; their values are
    shown as *** wherever the run prints them.
    """
    import asyncio

    from flowrunner.secrets import Masker

    err = Console(stderr=True, soft_wrap=True)
    run_input = parse_input(input_)
    secrets = collect_secrets(environ=os.environ, file=secrets_file, pairs=secret or ())
    # The same masking as on the server: no secret value reaches the terminal.
    masker = Masker.for_secrets(secrets)
    try:
        result = asyncio.run(_execute(file, run_input, err, secrets, masker))
    except ExecutionError as exc:
        _report_failure(err, exc, output, masker)
        raise typer.Exit(1) from exc
    except FlowrunnerError as exc:  # e.g. the sandbox could not start: still masked
        err.print(f"[bold red]error:[/] {escape(masker.mask_text(str(exc)))}", highlight=False)
        raise typer.Exit(exc.exit_code) from exc
    output_value = masker.mask(result.output)
    if output is OutputFormat.json:
        typer.echo(
            _to_json(
                {
                    "status": "completed",
                    "output": output_value,
                    "action": result.action,
                    "last_node": result.last_node_id,
                    "steps": result.steps,
                }
            )
        )
        return
    ended = "" if result.action in (None, "default") else f", ended by action '{result.action}'"
    err.print(f"[bold green]completed[/] in {result.steps} steps{escape(ended)}", highlight=False)
    typer.echo(_to_json(output_value))


def _report_failure(
    console: Console, exc: ExecutionError, output: OutputFormat, masker: Masker
) -> None:
    node_id = getattr(exc, "node_id", None)
    data = masker.mask(exc.data) if isinstance(exc, NodeFailed) else None
    message = masker.mask_text(str(exc))
    if output is OutputFormat.json:
        typer.echo(
            _to_json(
                {
                    "status": "failed",
                    "error": {
                        "code": exc.code,
                        "message": message,
                        "node_id": node_id,
                        "data": data,
                    },
                }
            )
        )
        return
    console.print(f"[bold red]failed[/]: {escape(message)}", highlight=False)
    if data is not None:
        console.print(f"[dim]node input:[/] {escape(_to_json(data))}", highlight=False)


def schema() -> None:
    """Print the JSON Schema of the flow format, with the params of every node type, built-in
    or plugin (for editors: yaml-language-server)."""
    from flowrunner.definition.schema.editor import editor_schema

    registry = _registry(Console(stderr=True, soft_wrap=True))
    types = {name: registry.get(name).params_schema for name in registry.names()}
    typer.echo(json.dumps(editor_schema(types), indent=2))


def register(app: typer.Typer) -> None:
    app.command(epilog="Example: flowrunner validate flows/*.yaml")(validate)
    app.command(epilog='Example: flowrunner run hello.yaml --input \'{"name": "Ada"}\' -o json')(
        run
    )
    app.command(epilog="Example: flowrunner schema > flowrunner.schema.json")(schema)
