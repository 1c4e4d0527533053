"""The websocket guide (shared/spec/websocket-guide.md), snippet by snippet.

Each controller below is the guide's code with only the imports changed. Two of the guide's own
bugs are fixed, as noted where they occur: ``assert ws.close()`` never awaits the close, and
nose-style ``setup`` is not called by modern pytest (``setup_method`` is).
The ``ws-index.html`` template is the guide's, in ``tests/guide/templates`` beside this module (the
folder triows finds beside a controller's module, as Ellar does).
"""

from __future__ import annotations

import pytest

from triows import Controller, ControllerBase, get, render, ws_route
from triows.testing import Test, TestClient, WebSocketDenied


# -- "Creating a WebSocket Route" ---------------------------------------------------------------
@Controller("/car")
class PassController(ControllerBase):
    @ws_route("/live-support")
    async def live_support(self):
        pass


def test_route_with_pass_refuses_the_handshake() -> None:
    client = Test.create_test_module(controllers=[PassController]).get_test_client()
    # The handler returned without accepting: the client is refused as a real server would.
    with pytest.raises(WebSocketDenied) as denied, client.websocket_connect("/car/live-support"):
        pass
    assert denied.value.status_code == 403


# -- the accept/loop handler and the @get + @render page -----------------------------------------
@Controller("/car")
class CarController(ControllerBase):
    @get("/ws-index")
    @render(template_name="ws-index.html")
    async def ws_index(self):
        return {}

    @ws_route("/live-support")
    async def live_support(self):
        ws = self.context.switch_to_websocket().get_client()
        await ws.accept()
        await ws.send_text("Welcome to our live support room!\nHow can we help you?")

        while True:
            try:
                data = await ws.receive_text()
                await ws.send_text(
                    f'We have received you complain:<br><br><strong>"{data}"</strong><br><br>We shall get back to you.'  # noqa: E501
                )
            except Exception:
                await ws.close()  # the guide writes `assert ws.close()`, which never awaits
                break


# -- "Testing a Websocket Route", verbatim but for setup -> setup_method ------------------------
class TestCarController:
    def setup_method(self):
        test_module = Test.create_test_module(
            controllers=[
                CarController,
            ],
            config_module=dict(REDIRECT_SLASHES=True),  # noqa: C408 - the guide, verbatim
        )
        self.client: TestClient = test_module.get_test_client()

    def teardown_method(self):
        self.client.close()

    def test_live_support_works(self):
        with self.client.websocket_connect("/car/live-support") as websocket_client:
            data = websocket_client.receive_text()
            assert data == "Welcome to our live support room!\nHow can we help you?"

            websocket_client.send_text("Message from client")
            data = websocket_client.receive_text()
            assert (
                data
                == 'We have received you complain:<br><br><strong>"Message from client"</strong><br><br>We shall get back to you.'  # noqa: E501
            )

    def test_ws_index_renders_the_page(self):
        response = self.client.get("/car/ws-index")
        assert response.status_code == 200
        assert response.headers["content-type"] == "text/html; charset=utf-8"
        assert "<h2>Support Live Support</h2>" in response.text
        assert 'new WebSocket("ws://localhost:8000/car/live-support")' in response.text

    def test_redirect_slashes_from_the_config_module(self):
        response = self.client.get("/car/ws-index/", follow_redirects=False)
        assert response.status_code == 307
        assert response.headers["location"] == "/car/ws-index"
