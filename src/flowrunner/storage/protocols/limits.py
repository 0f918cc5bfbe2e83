"""Page sizes every listing shares."""

DEFAULT_LIMIT = 50
MAX_LIMIT = 1000
