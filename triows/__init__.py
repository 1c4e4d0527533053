"""triows: a Trio-native websocket framework.

Controllers with ``@ws_route`` and HTTP routes, guards that answer before the handshake,
validated messages, and a nursery per connection. Serve with
``hypercorn --worker-class trio module:app``.
"""

from __future__ import annotations

from ._settings import APP_DEFAULT as APP_DEFAULT
from ._settings import OutboxPolicy as OutboxPolicy
from .app import App as App
from .channels import Channels as Channels
from .channels import Membership as Membership
from .config import Config as Config
from .context import ExecutionContext as ExecutionContext
from .context import IExecutionContext as IExecutionContext
from .controllers import Controller as Controller
from .controllers import ControllerBase as ControllerBase
from .controllers import delete as delete
from .controllers import get as get
from .controllers import patch as patch
from .controllers import post as post
from .controllers import put as put
from .controllers import render as render
from .controllers import ws_route as ws_route
from .di import Provider as Provider
from .di import injectable as injectable
from .errors import CloseCode as CloseCode
from .errors import ConfigurationError as ConfigurationError
from .errors import HTTPException as HTTPException
from .errors import WebSocketDisconnect as WebSocketDisconnect
from .errors import WebSocketException as WebSocketException
from .errors import WebSocketStateError as WebSocketStateError
from .guards import GuardCanActivate as GuardCanActivate
from .guards import Guards as Guards
from .params import Body as Body
from .params import Cookie as Cookie
from .params import Header as Header
from .params import Inject as Inject
from .params import Path as Path
from .params import Query as Query
from .params import RequestValidationError as RequestValidationError
from .params import WsBody as WsBody
from .requests import Request as Request
from .responses import HTMLResponse as HTMLResponse
from .responses import JSONResponse as JSONResponse
from .responses import PlainTextResponse as PlainTextResponse
from .responses import RedirectResponse as RedirectResponse
from .responses import Response as Response
from .routing import NoMatchFound as NoMatchFound
from .websocket import WebSocket as WebSocket
from .websocket import WebSocketState as WebSocketState

__version__ = "0.1.0"

__all__ = [
    "APP_DEFAULT",
    "App",
    "Body",
    "Channels",
    "CloseCode",
    "Config",
    "ConfigurationError",
    "Controller",
    "ControllerBase",
    "Cookie",
    "ExecutionContext",
    "GuardCanActivate",
    "Guards",
    "HTMLResponse",
    "HTTPException",
    "Header",
    "IExecutionContext",
    "Inject",
    "JSONResponse",
    "Membership",
    "NoMatchFound",
    "OutboxPolicy",
    "Path",
    "PlainTextResponse",
    "Provider",
    "Query",
    "RedirectResponse",
    "Request",
    "RequestValidationError",
    "Response",
    "WebSocket",
    "WebSocketDisconnect",
    "WebSocketException",
    "WebSocketState",
    "WebSocketStateError",
    "WsBody",
    "delete",
    "get",
    "injectable",
    "patch",
    "post",
    "put",
    "render",
    "ws_route",
]
