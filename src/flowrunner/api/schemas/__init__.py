"""Pydantic request and response models of the API, one module per domain.

Request models are strict (``extra="forbid"``, no type coercion): an unknown field, a wrong
type or a server-owned field (ids, ``account_id``, ``is_admin``, timestamps) is a 422.
"""

from pydantic import BaseModel, ConfigDict


class RequestModel(BaseModel):
    model_config = ConfigDict(extra="forbid", strict=True)


class ResponseModel(BaseModel):
    model_config = ConfigDict(from_attributes=True)


__all__ = ["RequestModel", "ResponseModel"]
