"""The AsyncAPI 3.0.0 document of an app, generated from its route model, and its viewer page.

An :class:`~triows.App` serves ``/asyncapi.json`` and ``/asyncapi`` unless built with
``asyncapi=False`` (``docs/asyncapi.md``).
"""

from ._document import AsyncAPI as AsyncAPI
from ._document import document as document

__all__ = ["AsyncAPI", "document"]
