"""The secrets vault: encryption at rest with rotating keys, and masking of resolved values."""

from flowrunner.secrets.keyring import Keyring, key_id
from flowrunner.secrets.masking import MASK, Masker
from flowrunner.secrets.vault import SecretVault

__all__ = ["MASK", "Keyring", "Masker", "SecretVault", "key_id"]
