"""The guide's "Guards on websockets" and "Websocket handler Dependencies" sections, live.

The controller is the guide's code with only the imports changed (and ``assert ws.close()``,
which never awaits, replaced by ``await ws.close()``). It runs on real hypercorn (trio worker)
and is spoken to by a real client (trio-websocket), and in-process for comparison.
"""

from __future__ import annotations

import pytest
import trio
from live import open_websocket, rejection, serve
from support import refusal

from triows import (
    App,
    Controller,
    ControllerBase,
    GuardCanActivate,
    Guards,
    IExecutionContext,
    Provider,
    Query,
    injectable,
    ws_route,
)
from triows.testing import AsyncTestClient


@injectable
class MyGuard(GuardCanActivate):
    async def can_activate(self, context: IExecutionContext) -> bool:
        print("MyGuard was called.")
        return False


@Controller("/car")
class CarController(ControllerBase):
    @ws_route("/live-support")
    @Guards(MyGuard)
    async def live_support(self, name: str = Query("John")):
        ws = self.context.switch_to_websocket().get_client()
        await ws.accept()
        await ws.send_text(f"Welcome {name} to our live support room!\nHow can we help you?")

        while True:
            try:
                data = await ws.receive_text()
                await ws.send_text(
                    f'We have received you complain:<br><br><strong>"{data}"</strong><br><br>We shall get back to you.'  # noqa: E501
                )
            except Exception:
                await ws.close()
                break


class LetEveryoneIn(GuardCanActivate):
    async def can_activate(self, context: IExecutionContext) -> bool:
        return True


WELCOME = "Welcome {} to our live support room!\nHow can we help you?"

pytestmark = pytest.mark.live


async def test_refusing_guard_gives_a_real_client_http_403(
    capsys: pytest.CaptureFixture[str],
) -> None:
    app = App(controllers=[CarController])
    with trio.fail_after(10):
        async with serve(app) as server:
            rejected = await rejection(server, "/car/live-support")
    assert rejected.status_code == 403
    assert rejected.body == b'{"detail":"Forbidden"}'
    assert capsys.readouterr().out == "MyGuard was called.\n"


async def test_refusing_guard_in_process_agrees() -> None:
    with trio.fail_after(5):
        async with AsyncTestClient(App(controllers=[CarController])) as client:
            denied = await refusal(client, "/car/live-support")
    assert (denied.status_code, denied.body) == (403, b'{"detail":"Forbidden"}')


async def test_passing_guard_welcomes_john_then_ellar_over_hypercorn() -> None:
    app = App(controllers=[CarController], providers=[Provider(MyGuard, use_class=LetEveryoneIn)])
    with trio.fail_after(10):
        async with serve(app) as server:
            async with open_websocket(server, "/car/live-support") as ws:
                assert await ws.get_message() == WELCOME.format("John")
                await ws.send_message("Message from client")
                assert await ws.get_message() == (
                    'We have received you complain:<br><br><strong>"Message from client"'
                    "</strong><br><br>We shall get back to you."
                )
            async with open_websocket(server, "/car/live-support?name=ellar") as ws:
                assert await ws.get_message() == WELCOME.format("ellar")
