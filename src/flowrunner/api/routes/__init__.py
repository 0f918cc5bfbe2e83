"""One router per domain; ``api.app`` mounts them under ``/api/v1`` (health at the root)."""
