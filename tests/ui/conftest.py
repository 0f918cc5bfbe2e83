"""The dashboard is served by the API app: its tests use the API harness's fixtures."""

from tests.api.conftest import api, app, secret_key, settings

__all__ = ["api", "app", "secret_key", "settings"]
