"""Imports every model module so ``Base.metadata`` is complete (Alembic, test schemas).

Add one import line per new model module.
"""

from __future__ import annotations

import binding_store.api_models
import binding_store.call_rules_models
import binding_store.cdr_models
import binding_store.extension_models
import binding_store.idempotency_models
import binding_store.recording_models
import binding_store.webhook_models  # noqa: F401
from binding_store import models
from binding_store.models import Base

__all__ = ["Base", "models"]
