"""The server of ``python -m bench.channels_redis``: a room on the channels backend.

A member joins the room ``"room"`` (the backend is ``TRIOWS_CHANNELS_URL``) and is told so;
what it sends (a message number) is published as ``{"event": "message", "n": N}``.
"""

from __future__ import annotations

import os

from triows import App, Channels, Controller, ControllerBase, WebSocket, ws_route


@Controller("/")
class RoomController(ControllerBase):
    @ws_route("/room")
    async def room(self, websocket: WebSocket, channels: Channels) -> None:
        await websocket.accept()
        await channels.join("room", websocket)
        await websocket.send_text('{"event":"joined"}')
        async for text in websocket.iter_text():
            await channels.publish("room", {"event": "message", "n": int(text)})


app = App(
    controllers=[RoomController],
    config={"CHANNELS_URL": os.environ.get("TRIOWS_CHANNELS_URL", "memory://")},
)
