from __future__ import annotations

import hashlib
import logging
import stat
from pathlib import Path

import pytest
from pydantic import SecretStr

from flowrunner.config import Settings
from flowrunner.errors import VaultError
from flowrunner.secrets import Keyring, key_id
from tests.secrets.conftest import KEY1, KEY2


def test_key_id_is_the_first_8_hex_of_the_keys_sha256() -> None:
    assert key_id(KEY1) == hashlib.sha256(KEY1.encode()).hexdigest()[:8]
    assert key_id(KEY1) != key_id(KEY2)


def test_the_newest_key_encrypts_and_every_key_decrypts() -> None:
    old = Keyring([KEY1])
    ciphertext, kid = old.encrypt(b"hello")
    assert kid == key_id(KEY1)
    both = Keyring([KEY2, KEY1])
    assert both.primary_id == key_id(KEY2)
    assert both.key_ids == [key_id(KEY2), key_id(KEY1)]
    assert both.decrypt(ciphertext, kid) == b"hello"
    assert both.encrypt(b"x")[1] == key_id(KEY2)


def test_a_missing_key_id_is_named_in_the_error() -> None:
    ciphertext, kid = Keyring([KEY1]).encrypt(b"hello")
    with pytest.raises(VaultError, match=kid):
        Keyring([KEY2]).decrypt(ciphertext, kid)


def test_an_invalid_key_fails_without_echoing_it() -> None:
    with pytest.raises(VaultError, match="#2") as caught:
        Keyring([KEY1, "not-a-fernet-key"])
    assert "not-a-fernet-key" not in str(caught.value)
    with pytest.raises(VaultError):
        Keyring([])


def test_keys_come_from_settings_comma_separated_newest_first(tmp_path: Path) -> None:
    settings = Settings(data_dir=tmp_path, secret_keys=SecretStr(f" {KEY2} , {KEY1},"))
    assert Keyring.from_settings(settings).key_ids == [key_id(KEY2), key_id(KEY1)]
    assert not (tmp_path / "secret.key").exists()


def test_without_keys_one_is_generated_once_with_0600_and_a_warning(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    settings = Settings(data_dir=tmp_path / "data")
    with caplog.at_level(logging.WARNING, logger="flowrunner.secrets.keyring"):
        first = Keyring.from_settings(settings)
    key_file = tmp_path / "data" / "secret.key"
    assert stat.S_IMODE(key_file.stat().st_mode) == 0o600
    assert "FLOWRUNNER_SECRET_KEYS" in caplog.text
    # A restart reuses the same key, so nothing encrypted before becomes unreadable.
    again = Keyring.from_settings(settings)
    assert again.key_ids == first.key_ids
    assert again.key_ids == [key_id(key_file.read_text().strip())]


def test_an_empty_key_file_fails_instead_of_making_a_new_key(tmp_path: Path) -> None:
    (tmp_path / "secret.key").write_text("")
    with pytest.raises(VaultError, match="empty"):
        Keyring.from_settings(Settings(data_dir=tmp_path))


def test_a_key_file_readable_by_others_is_warned_about(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    key_file = tmp_path / "secret.key"
    key_file.write_text(KEY1)
    key_file.chmod(0o644)
    with caplog.at_level(logging.WARNING, logger="flowrunner.secrets.keyring"):
        assert Keyring.from_settings(Settings(data_dir=tmp_path)).key_ids == [key_id(KEY1)]
    assert "chmod 600" in caplog.text


def test_the_memory_store_gets_an_in_memory_key_and_no_file(tmp_path: Path) -> None:
    settings = Settings(data_dir=tmp_path, storage="memory")
    assert Keyring.from_settings(settings).key_ids != Keyring.from_settings(settings).key_ids
    assert list(tmp_path.iterdir()) == []
