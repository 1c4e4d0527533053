"""The guide's "Advance websocket usage" section: the extra-handler example and its simplification.

Both controllers are the guide's code with only the imports changed (``ellar.common`` and
``starlette.websockets`` become ``triows``). The guide leaves ``MyGuard`` undefined; here it lets
everyone in. Each example is spoken to by the guide's synchronous ``TestClient`` and, over a real
socket, by trio-websocket against hypercorn (trio worker) running in-process.
"""

from __future__ import annotations

import pytest
import trio
from live import open_websocket, serve
from support import error_records

from triows import App, GuardCanActivate, IExecutionContext, injectable
from triows.testing import Test, WebSocketDisconnect


@injectable
class MyGuard(GuardCanActivate):
    async def can_activate(self, context: IExecutionContext) -> bool:
        return True


# -- the extra-handler example, with its connect and disconnect hooks ---------------------------
# fmt: off
from triows import Controller, ControllerBase, ws_route, get, render, WsBody, Guards  # noqa: E402, I001
from triows import WebSocket  # noqa: E402


@Controller('/car')
class CarController(ControllerBase):
    @get('/ws-index')
    @render(template_name='ws-index.html')
    async def ws_index(self):
        return {}

    @ws_route('/live-support', use_extra_handler=True, encoding='text')
    @Guards(MyGuard)
    async def live_support(self, data: str = WsBody()):
        ws = self.context.switch_to_websocket().get_client()
        await ws.send_text(f'We have received you complain:<br><br><strong>"{data}"</strong><br><br>We shall get back to you.')  # noqa: E501

    @ws_route.connect(live_support)
    async def live_support_connect(self, websocket: WebSocket):
        await websocket.accept()
        await websocket.send_text('Welcome to our live support room!\nHow can we help you?')

    @ws_route.disconnect(live_support)
    async def live_support_disconnect(self, websocket: WebSocket, code: int):
        await websocket.close(code)
# fmt: on

HooksCarController = CarController


# -- "Simplifying the example above": no hooks, the default accept -------------------------------
# fmt: off
from triows import ControllerBase, Controller, ws_route, get, render, WsBody  # noqa: E402, I001


@Controller('/car')
class CarController(ControllerBase):
    @get('/ws-index')
    @render(template_name='ws-index.html')
    async def ws_index(self):
        return {}

    @ws_route('/live-support', use_extra_handler=True, encoding='text')
    async def live_support(self, data: str = WsBody()):
        ws = self.context.switch_to_websocket().get_client()
        await ws.send_text(f'We have received you complain:<br><br><strong>"{data}"</strong><br><br>We shall get back to you.')  # noqa: E501
# fmt: on

SimpleCarController = CarController


WELCOME = "Welcome to our live support room!\nHow can we help you?"
COMPLAINTS = ["Message from client", "the engine is loud", 'quotes " and <b>tags</b> stay as sent']

#: hypercorn start-up, a short conversation and shutdown take well under a second.
TIMEOUT = 10

EXAMPLES = [
    pytest.param(HooksCarController, [WELCOME], id="with-hooks"),
    pytest.param(SimpleCarController, [], id="simplified"),
]


def answer(complaint: str) -> str:
    return (
        f'We have received you complain:<br><br><strong>"{complaint}"</strong>'
        "<br><br>We shall get back to you."
    )


@pytest.mark.parametrize(("controller", "greeting"), EXAMPLES)
def test_sync_test_client(
    controller: type, greeting: list[str], caplog: pytest.LogCaptureFixture
) -> None:
    module = Test.create_test_module(controllers=[controller])
    with module.get_test_client() as client:
        with client.websocket_connect("/car/live-support") as ws:
            for text in greeting:
                assert ws.receive_text() == text
            for complaint in COMPLAINTS:
                ws.send_text(complaint)
                assert ws.receive_text() == answer(complaint)
        # The @render page beside the route still works.
        page = client.get("/car/ws-index")
        assert page.status_code == 200
        assert "<title>Ellar Chat Demo</title>" in page.text
    # The disconnect hook (closing an already-ended connection) and the loop end quietly.
    assert error_records(caplog) == []


@pytest.mark.live
@pytest.mark.parametrize(("controller", "greeting"), EXAMPLES)
async def test_hypercorn_and_a_real_client(
    controller: type, greeting: list[str], caplog: pytest.LogCaptureFixture
) -> None:
    app: App = Test.create_test_module(controllers=[controller]).create_application()
    with trio.fail_after(TIMEOUT):
        async with serve(app) as server:
            async with open_websocket(server, "/car/live-support") as ws:
                for text in greeting:
                    assert await ws.get_message() == text
                for complaint in COMPLAINTS:
                    await ws.send_message(complaint)
                    assert await ws.get_message() == answer(complaint)
            # A second client gets the same treatment: nothing leaked from the first.
            async with open_websocket(server, "/car/live-support") as ws:
                for text in greeting:
                    assert await ws.get_message() == text
                await ws.send_message("again")
                assert await ws.get_message() == answer("again")
    assert error_records(caplog) == []


def test_sync_test_client_sees_text_only_rule() -> None:
    """encoding='text': a binary frame closes with 1003, as the guide's encodings list says."""
    module = Test.create_test_module(controllers=[HooksCarController])
    with module.get_test_client() as client, client.websocket_connect("/car/live-support") as ws:
        assert ws.receive_text() == WELCOME
        ws.send_bytes(b"not text")
        with pytest.raises(WebSocketDisconnect) as closed:
            ws.receive_text()
    assert (closed.value.code, closed.value.reason) == (1003, "expected a text frame, got binary")
