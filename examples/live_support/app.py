"""The live-support chat of the websocket guide, served by triows.

Run it from the repository root with ``triows run examples.live_support.app:app`` (or
``./scripts/run-example``), or from this folder with ``triows run app:app``; plain
``hypercorn --worker-class trio app:app`` works too. Then open
http://127.0.0.1:8000/car/ws-index.
"""

from __future__ import annotations

import html
from pathlib import Path

from triows import App, Controller, ControllerBase, RedirectResponse, get, render, ws_route

HERE = Path(__file__).resolve().parent

WELCOME = "Welcome to our live support room!\nHow can we help you?"


def answer(complaint: str) -> str:
    """The reply to one complaint; the client's text is escaped, the markup is ours.

    The guide's reply reads "We have received you complain"; the guide's own snippets keep it
    word for word (``tests/guide``), the example users see reads well.
    """
    return (
        f'We have received your complaint:<br><br><strong>"{html.escape(complaint)}"</strong>'
        "<br><br>We shall get back to you."
    )


@Controller("/car")
class CarController(ControllerBase):
    @get("/ws-index")
    @render(template_name="ws-index.html")
    async def ws_index(self) -> dict[str, str]:
        app = self.context.switch_to_http().get_request().app
        return {"ws_path": app.url_path_for("live_support")}

    @ws_route("/live-support")
    async def live_support(self) -> None:
        ws = self.context.switch_to_websocket().get_client()
        await ws.accept()
        await ws.send_text(WELCOME)
        async for complaint in ws.iter_text():
            await ws.send_text(answer(complaint))


@Controller("/")
class HomeController(ControllerBase):
    @get("/")
    async def home(self) -> RedirectResponse:
        return RedirectResponse("/car/ws-index")


app = App(
    controllers=[CarController, HomeController],
    template_folder=HERE / "templates",
    static_folder=HERE / "static",
)
