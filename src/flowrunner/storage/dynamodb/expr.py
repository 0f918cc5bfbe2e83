"""A small builder for update and condition expressions.

Every attribute goes through a ``#name`` placeholder and every value through a ``:vN``
placeholder: many of our attribute names (``name``, ``status``, ``data``, ``key``, ``value``,
``ttl``...) are DynamoDB reserved words, and placeholders also keep values out of the text.
"""

from __future__ import annotations

from typing import Any


class Expr:
    def __init__(self) -> None:
        self.names: dict[str, str] = {}
        self.values: dict[str, Any] = {}
        self._sets: list[str] = []
        self._removes: list[str] = []

    def n(self, attribute: str) -> str:
        placeholder = f"#{attribute}"
        self.names[placeholder] = attribute
        return placeholder

    def v(self, value: Any) -> str:
        placeholder = f":v{len(self.values)}"
        self.values[placeholder] = value
        return placeholder

    def set(self, attribute: str, value: Any) -> Expr:
        """``attribute = value``; ``None`` removes the attribute (absent means unset)."""
        if value is None:
            return self.remove(attribute)
        self._sets.append(f"{self.n(attribute)} = {self.v(value)}")
        return self

    def set_fields(self, fields: dict[str, Any]) -> Expr:
        """Set the fields that are not None (the "None = leave as is" update convention)."""
        for attribute, value in fields.items():
            if value is not None:
                self.set(attribute, value)
        return self

    def set_expr(self, attribute: str, expression: str) -> Expr:
        """``attribute = <expression>`` built from this builder's placeholders."""
        self._sets.append(f"{self.n(attribute)} = {expression}")
        return self

    def remove(self, *attributes: str) -> Expr:
        self._removes.extend(self.n(a) for a in attributes)
        return self

    @property
    def update(self) -> str:
        parts = []
        if self._sets:
            parts.append("SET " + ", ".join(self._sets))
        if self._removes:
            parts.append("REMOVE " + ", ".join(self._removes))
        return " ".join(parts)

    # --- conditions -----------------------------------------------------------------------

    def exists(self, attribute: str = "pk") -> str:
        return f"attribute_exists({self.n(attribute)})"

    def missing(self, attribute: str = "pk") -> str:
        return f"attribute_not_exists({self.n(attribute)})"

    def eq(self, attribute: str, value: Any) -> str:
        return f"{self.n(attribute)} = {self.v(value)}"

    def is_in(self, attribute: str, values: list[Any]) -> str:
        return f"{self.n(attribute)} IN ({', '.join(self.v(x) for x in values)})"

    def le(self, attribute: str, value: Any) -> str:
        return f"{self.n(attribute)} <= {self.v(value)}"

    def gt(self, attribute: str, value: Any) -> str:
        return f"{self.n(attribute)} > {self.v(value)}"
