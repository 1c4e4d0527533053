"""The one logger of the package: ``logging.getLogger("triows")``."""

from __future__ import annotations

import logging

__all__ = ["logger"]

logger = logging.getLogger("triows")
