"""Request and response bodies (pydantic v2): the OpenAPI document is generated from these.

This module holds what the bodies share: the id pattern, the phone-number field, the examples
helper and the strict base of request bodies. The bodies live with the endpoints that use them
(``api.shop_schemas``, ``api.binding_schemas``, ``api.call_log_schemas``,
``api.operations_schemas``, ``api.platform_schemas``, ``api.webhook_schemas``).
"""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel, ConfigDict, Field

ID_PATTERN = r"^[A-Za-z0-9][A-Za-z0-9._:@-]*$"
Number = Field(min_length=1, max_length=32, description="A phone number (E.164 or national).")


# Examples (the OpenAPI document shows them; a test wants one on every operation).
def examples(*values: dict[str, Any]) -> ConfigDict:
    """Model-level examples: every operation using the model shows them."""
    return ConfigDict(json_schema_extra={"examples": list(values)})


class StrictBody(BaseModel):
    """A request body: unknown fields refused, strings stripped."""

    model_config = ConfigDict(extra="forbid", str_strip_whitespace=True)
