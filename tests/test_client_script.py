"""The app serves triows.js and its declarations (``client_script=``), or neither."""

from __future__ import annotations

import pytest
from support import client_for

from triows import App, ConfigurationError
from triows.client import SCRIPT, TYPES


async def test_served_at_triows_js_with_its_declarations_beside_it() -> None:
    async with client_for(App()) as client:
        script = await client.get("/triows.js")
        types = await client.get("/triows.d.ts")
        head = await client.head("/triows.js")
    assert script.status_code == 200
    assert script.headers["content-type"] == "text/javascript; charset=utf-8"
    assert script.content == SCRIPT.read_bytes()
    assert "export function connect(" in script.text
    assert types.status_code == 200
    assert types.content == TYPES.read_bytes()
    assert "export function connect<" in types.text
    assert (head.status_code, head.content) == (200, b"")


async def test_another_path_or_none() -> None:
    async with client_for(App(client_script="/static-js/client.js")) as client:
        assert (await client.get("/static-js/client.js")).status_code == 200
        assert (await client.get("/static-js/client.d.ts")).status_code == 200
        assert (await client.get("/triows.js")).status_code == 404
    async with client_for(App(client_script=None)) as client:
        assert (await client.get("/triows.js")).status_code == 404


def test_a_client_script_path_starts_with_a_slash() -> None:
    with pytest.raises(ConfigurationError, match="client_script= is a path starting with '/'"):
        App(client_script="triows.js")
