"""Which server a command talks to, as whom, and how it prints: resolved once per command.

Precedence, per value: the command's flags (``--url``, ``--token``, ``--output``) > the
environment (``FLOWRUNNER_URL``, ``FLOWRUNNER_TOKEN``, ``FLOWRUNNER_PROFILE``) > the profile
(``--profile``, else the file's ``current``). A profile's token is only sent to the profile's
own server: ``--url`` naming another server does not take the token along.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path

from flowrunner.cli.client.config import ConfigFile, Profile, default_path
from flowrunner.cli.client.errors import NotLoggedIn, UsageProblem
from flowrunner.cli.client.http import Api
from flowrunner.cli.client.output import Output


def same_server(a: str | None, b: str | None) -> bool:
    return a is not None and b is not None and a.rstrip("/") == b.rstrip("/")


@dataclass
class Session:
    config: ConfigFile
    profile_name: str
    profile: Profile | None
    url: str | None
    token: str | None
    output: Output
    _apis: list[Api] = field(default_factory=list)

    @property
    def api(self) -> Api:
        """The API with the caller's token; an error naming what to do without one."""
        url = self.server_url()
        if not self.token:
            raise NotLoggedIn(
                f"not logged in to {url}: run `flowrunner login`, or pass --token / "
                "set FLOWRUNNER_TOKEN"
            )
        return self._open(Api(url, self.token))

    def server_url(self) -> str:
        if not self.url:
            raise UsageProblem(
                "no server given: run `flowrunner login --url URL`, or pass --url / "
                "set FLOWRUNNER_URL"
            )
        return self.url

    def _open(self, api: Api) -> Api:
        self._apis.append(api)
        return api

    def anonymous(self, auth: tuple[str, str] | None = None) -> Api:
        return self._open(Api(self.server_url(), auth=auth))

    def close(self) -> None:
        for api in self._apis:
            api.close()


def open_session(
    *,
    config: Path | None = None,
    profile: str | None = None,
    url: str | None = None,
    token: str | None = None,
    output: Output | None = None,
    environ: Mapping[str, str] = os.environ,
) -> Session:
    file = ConfigFile.load(config.expanduser() if config else default_path(environ))
    wanted = profile or environ.get("FLOWRUNNER_PROFILE") or None
    if wanted is not None and wanted not in file.profiles and profile is not None:
        known = ", ".join(sorted(file.profiles)) or "none yet"
        raise UsageProblem(f"no profile {wanted!r} in {file.path} (profiles: {known})")
    name, chosen = file.profile(wanted)
    server = url or environ.get("FLOWRUNNER_URL") or (chosen.url if chosen else None)
    secret = token or environ.get("FLOWRUNNER_TOKEN") or None
    if secret is None and chosen is not None and same_server(chosen.url, server):
        secret = chosen.token
    fmt = output
    if fmt is None and chosen is not None and chosen.output:
        try:
            fmt = Output(chosen.output)
        except ValueError as exc:
            raise UsageProblem(
                f"{file.path}: profiles.{name}.output must be table, json or yaml"
            ) from exc
    return Session(file, name, chosen, server, secret, fmt or Output.table)
