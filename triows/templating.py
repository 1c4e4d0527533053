"""Jinja2 templates for ``@render`` handlers.

One environment per app. Templates are looked up in the app's ``template_folder`` first, then
in a ``templates`` folder beside each controller's module (Ellar's layout: a controller in
``apps/car/controller.py`` finds ``apps/car/templates/ws-index.html`` with no configuration).
Autoescaping is on for ``.html``, ``.htm`` and ``.xml``.
"""

from __future__ import annotations

import sys
from collections.abc import Callable, Iterable, Mapping
from pathlib import Path
from typing import Any

import jinja2

__all__ = ["Templates", "controller_template_folder"]


def controller_template_folder(controller: type) -> Path | None:
    """The ``templates`` folder beside the module declaring ``controller``, if it exists."""
    module = sys.modules.get(controller.__module__)
    filename = getattr(module, "__file__", None)
    if not filename:
        return None
    folder = Path(filename).parent / "templates"
    return folder if folder.is_dir() else None


class Templates:
    """The app's Jinja2 environment.

    Args:
        folders: Where templates are looked up, in order.
        url_for: The ``url_for(name, **params)`` global offered to templates.
    """

    def __init__(self, folders: Iterable[str | Path], url_for: Callable[..., str]) -> None:
        self.folders = [Path(folder) for folder in folders]
        self.environment = jinja2.Environment(
            loader=jinja2.FileSystemLoader(self.folders),
            autoescape=jinja2.select_autoescape(["html", "htm", "xml"]),
            undefined=jinja2.StrictUndefined,
        )
        self.environment.globals["url_for"] = url_for

    def exists(self, name: str) -> bool:
        """Whether ``name`` can be found."""
        try:
            self.environment.get_template(name)
        except jinja2.TemplateNotFound:
            return False
        return True

    def render(self, name: str, context: Mapping[str, Any]) -> str:
        """Render template ``name`` with ``context``."""
        return self.environment.get_template(name).render(context)
