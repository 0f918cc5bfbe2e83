"""Checkpoint values that hold a secret are stored encrypted, never in plain text.

A checkpoint is what a run resumes from, so unlike an event it cannot simply be masked: a
``set`` node that copied ``${secrets.TOKEN}`` into ``shared`` must hand the real token to the
node after a restart. So every part of a checkpoint in which the run's masker finds a secret
(all of ``shared``, one node's result, the error an ``error`` edge carries) is replaced by a
sealed envelope, encrypted with the vault's keyring, and opened again when the run resumes.
Parts without a secret stay readable JSON: progress is computed from them, and a retry copies
them. Without a keyring (a runner built without the vault) the part is masked instead: the
run may then resume with ``***`` where a secret was, but nothing leaks.

The envelope names the key id it was sealed with; a checkpoint sealed before a key rotation
needs that key until the run has finished.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, Protocol

from flowrunner import jsontext
from flowrunner.errors import VaultError
from flowrunner.secrets import Masker

SEALED = "$sealed"
_SCHEME = "fernet"


class Keys(Protocol):
    """Encrypts with the newest key, decrypts by key id (``flowrunner.secrets.Keyring``)."""

    def encrypt(self, plaintext: bytes) -> tuple[bytes, str]: ...
    def decrypt(self, ciphertext: bytes, kid: str) -> bytes: ...


class Sealer:
    """Seals the secret-holding parts of one run's checkpoints (see the module docstring)."""

    def __init__(self, masker: Masker, keys: Keys | None) -> None:
        self._masker = masker
        self._keys = keys

    def seal(self, value: Any) -> Any:
        """``value`` (JSON-safe) as is, or sealed (masked without keys) if it holds a secret."""
        if not self._masker.contains(value):
            return value
        if self._keys is None:
            return self._masker.mask(value)
        ciphertext, kid = self._keys.encrypt(jsontext.dumps(value).encode())
        return {SEALED: _SCHEME, "key_id": kid, "data": ciphertext.decode("ascii")}


def is_sealed(value: Any) -> bool:
    return (
        isinstance(value, Mapping)
        and value.get(SEALED) == _SCHEME
        and set(value) == {SEALED, "key_id", "data"}
    )


def unseal(value: Any, keys: Keys | None) -> Any:
    """The plain value of a part ``Sealer.seal`` sealed; any other value as is."""
    if not is_sealed(value):
        return value
    if keys is None:
        raise VaultError("this run's checkpoint is encrypted and no keyring was given to open it")
    plaintext = keys.decrypt(str(value["data"]).encode("ascii"), str(value["key_id"]))
    return jsontext.loads(plaintext)
