"""The secrets vault: encryption at rest with rotating keys, and masking of resolved values.

The names are imported lazily: logging needs only ``masking`` and ``redaction``, and must not
pull in the vault's storage and cryptography for it.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from flowrunner.secrets.keyring import Keyring, key_id
    from flowrunner.secrets.masking import MASK, Masker
    from flowrunner.secrets.vault import SecretVault

_LAZY = {
    "Keyring": "flowrunner.secrets.keyring",
    "key_id": "flowrunner.secrets.keyring",
    "MASK": "flowrunner.secrets.masking",
    "Masker": "flowrunner.secrets.masking",
    "SecretVault": "flowrunner.secrets.vault",
}


def __getattr__(name: str) -> Any:
    module = _LAZY.get(name)
    if module is None:
        raise AttributeError(f"module 'flowrunner.secrets' has no attribute {name!r}")
    value = getattr(importlib.import_module(module), name)
    globals()[name] = value
    return value


__all__ = ["MASK", "Keyring", "Masker", "SecretVault", "key_id"]
