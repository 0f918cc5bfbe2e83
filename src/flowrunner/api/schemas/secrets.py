"""Models of the secrets vault and the audit log."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from pydantic import Field

from flowrunner.api.schemas import RequestModel, ResponseModel
from flowrunner.storage import AuditRecord, Secret

SecretValue = str | dict[str, Any]


class SecretCreate(RequestModel):
    key: str = Field(min_length=1, max_length=128, description="used as ${secrets.KEY}")
    value: SecretValue = Field(description="a string, or a JSON object (e.g. SMTP settings)")
    metadata: dict[str, Any] | None = None


class SecretPut(RequestModel):
    value: SecretValue
    metadata: dict[str, Any] | None = None


class SecretImport(RequestModel):
    secrets: dict[str, SecretValue] = Field(
        description="KEY → value; all are saved or none (at most 1000)"
    )


class ImportOut(ResponseModel):
    """Keys by what the import did to them; never values."""

    added: list[str]
    changed: list[str]
    unchanged: list[str]
    warnings: list[str]


class SecretOut(ResponseModel):
    """A secret's metadata; listings never carry values."""

    key: str
    metadata: dict[str, Any]
    created_at: datetime
    updated_at: datetime

    @classmethod
    def of(cls, secret: Secret) -> SecretOut:
        return cls(
            key=secret.key,
            metadata=dict(secret.metadata),
            created_at=secret.created_at,
            updated_at=secret.updated_at,
        )


class SecretSaved(SecretOut):
    """A secret just created or replaced, with what the caller should know about it."""

    warnings: list[str] = Field(
        default_factory=list,
        description="e.g. a value too short to be masked inside longer text",
    )


class SecretWithValue(SecretOut):
    value: SecretValue


class SecretPage(ResponseModel):
    items: list[SecretOut]
    next_cursor: str | None


class RotationOut(ResponseModel):
    re_encrypted: int


class AuditOut(ResponseModel):
    seq: int
    action: str
    account_id: str | None
    actor: str | None
    target: str | None
    data: dict[str, Any]
    created_at: datetime
    prev_hash: str
    hash: str

    @classmethod
    def of(cls, record: AuditRecord) -> AuditOut:
        return cls(
            seq=record.seq,
            action=record.action,
            account_id=record.account_id,
            actor=record.actor,
            target=record.target,
            data=dict(record.data),
            created_at=record.created_at,
            prev_hash=record.prev_hash,
            hash=record.hash,
        )


class AuditPage(ResponseModel):
    items: list[AuditOut]
    next_cursor: str | None
