"""Tamper-evident audit log of security events (``AuditLog``) and its verification."""

from flowrunner.audit import actions
from flowrunner.audit.log import GLOBAL_CHAIN, AuditLog, VerifyReport

__all__ = ["GLOBAL_CHAIN", "AuditLog", "VerifyReport", "actions"]
