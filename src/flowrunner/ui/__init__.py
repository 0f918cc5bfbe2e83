"""The dashboard at ``/ui``, and Swagger UI at ``/docs``, served from files in this package.

The dashboard is a small ES-module app (``static/js``) over the same-origin API: no build step,
and every asset — the app, dagre for the graph layout, Swagger UI — is vendored under
``static/`` (see ``static/vendor/README.md``), so both work offline. Routes are hash-based
(``/ui/#/flows/<id>``), so the server answers only the page and the static files.
"""

from flowrunner.ui.mount import STATIC_DIR, install_ui

__all__ = ["STATIC_DIR", "install_ui"]
