"""Validation errors a client is sent are bounded (triows/_validation.py).

The same bounds hold for the websocket error frame and for HTTP 422: at most 32 errors, at most
4 KiB of the client's input echoed, ``loc`` parts cut at 64 characters.
"""

from __future__ import annotations

import json
from typing import Any

import pydantic
import pytest
import trio

from triows import App, Body, Controller, ControllerBase, WsBody, post, ws_route
from triows._validation import INPUT_BUDGET, client_errors
from triows.testing import AsyncTestClient


class Numbers(pydantic.BaseModel):
    values: list[int]


class Strict(pydantic.BaseModel):
    model_config = pydantic.ConfigDict(extra="forbid")
    name: str


def errors_of(model: type[pydantic.BaseModel], data: Any) -> tuple[list[dict[str, Any]], int]:
    with pytest.raises(pydantic.ValidationError) as raised:
        model.model_validate(data)
    return client_errors(raised.value, lambda error: None)


def test_at_most_32_errors_are_listed_and_the_rest_counted() -> None:
    errors, more = errors_of(Numbers, {"values": ["x"] * 40})
    assert len(errors) == 32
    assert more == 8
    assert errors[0] == {
        "type": "int_parsing",
        "loc": ["values", 0],
        "msg": "Input should be a valid integer, unable to parse string as an integer",
        "input": "x",
    }


def test_inputs_are_echoed_up_to_4_kib_in_all() -> None:
    big = "y" * 2000  # 2,002 bytes as JSON: two fit, the third would pass the budget
    errors, _ = errors_of(Numbers, {"values": [big, big, big, "z"]})
    assert [error.get("input") for error in errors] == [big, big, None, "z"]
    assert "input" not in errors[2]
    echoed = sum(len(json.dumps(e["input"])) for e in errors if "input" in e)
    assert echoed <= INPUT_BUDGET


def test_a_long_key_in_loc_is_cut() -> None:
    errors, _ = errors_of(Strict, {"name": "ok", "k" * 100: 1})
    assert errors == [
        {
            "type": "extra_forbidden",
            "loc": ["k" * 64 + "…"],
            "msg": "Extra inputs are not permitted",
            "input": 1,
        }
    ]


def test_an_exception_in_ctx_becomes_its_text() -> None:
    class Checked(pydantic.BaseModel):
        n: int

        @pydantic.field_validator("n")
        @classmethod
        def even(cls, value: int) -> int:
            if value % 2:
                raise ValueError("must be even")
            return value

    errors, _ = errors_of(Checked, {"n": 3})
    assert errors[0]["ctx"] == {"error": "must be even"}
    json.dumps(errors)  # JSON-ready


@Controller("")
class Bounded(ControllerBase):
    @ws_route("/numbers", use_extra_handler=True, encoding="json", on_invalid="reply")
    async def numbers(self, data: Numbers = WsBody()) -> None:
        await self.context.switch_to_websocket().get_client().send_json({"n": len(data.values)})

    @post("/numbers")
    async def post_numbers(self, data: Numbers = Body()) -> dict[str, int]:
        return {"n": len(data.values)}


async def test_the_error_frame_and_the_422_share_the_bounds() -> None:
    body = {"values": ["w" * 3000] * 40}
    with trio.fail_after(3):
        async with AsyncTestClient(App(controllers=[Bounded])) as client:
            async with client.websocket_connect("/numbers") as ws:
                await ws.send_json(body)
                frame = await ws.receive_json()
            response = await client.post("/numbers", json=body)
    assert response.status_code == 422
    detail = response.json()["detail"]
    assert frame["code"] == 1008
    assert frame["truncated"] == 8
    assert len(frame["errors"]) == len(detail) == 32
    assert [("input" in e) for e in frame["errors"]] == [True] + [False] * 31
    assert [e["loc"] for e in detail[:2]] == [["body", "values", 0], ["body", "values", 1]]
    assert [("input" in e) for e in detail] == [True] + [False] * 31
    assert len(json.dumps(frame)) < 8 * 1024
