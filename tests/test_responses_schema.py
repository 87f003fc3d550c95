"""Open Responses validation of what the gateway produces, and the renderer checked against it.

Other Responses test modules import `validate_object`, `validate_event` and `validate_item`.
"""

from __future__ import annotations

import copy
from typing import Any

import openresponses_types as ort
import pytest

from edge.errors import GatewayError
from edge.translate import neutral as n
from edge.translate.responses_object import Shell
from edge.translate.responses_render import ResponsesEvents, render_whole
from edge.translate.responses_request import parse_params
from edge.usage import Usage

EVENTS: dict[str, Any] = {
    "response.created": ort.ResponseCreatedStreamingEvent,
    "response.queued": ort.ResponseQueuedStreamingEvent,
    "response.in_progress": ort.ResponseInProgressStreamingEvent,
    "response.completed": ort.ResponseCompletedStreamingEvent,
    "response.failed": ort.ResponseFailedStreamingEvent,
    "response.incomplete": ort.ResponseIncompleteStreamingEvent,
    "response.output_item.added": ort.ResponseOutputItemAddedStreamingEvent,
    "response.output_item.done": ort.ResponseOutputItemDoneStreamingEvent,
    "response.content_part.added": ort.ResponseContentPartAddedStreamingEvent,
    "response.content_part.done": ort.ResponseContentPartDoneStreamingEvent,
    "response.output_text.delta": ort.ResponseOutputTextDeltaStreamingEvent,
    "response.output_text.done": ort.ResponseOutputTextDoneStreamingEvent,
    "response.refusal.delta": ort.ResponseRefusalDeltaStreamingEvent,
    "response.refusal.done": ort.ResponseRefusalDoneStreamingEvent,
    "response.reasoning_summary_part.added": ort.ResponseReasoningSummaryPartAddedStreamingEvent,
    "response.reasoning_summary_part.done": ort.ResponseReasoningSummaryPartDoneStreamingEvent,
    "response.reasoning_summary_text.delta": ort.ResponseReasoningSummaryDeltaStreamingEvent,
    "response.reasoning_summary_text.done": ort.ResponseReasoningSummaryDoneStreamingEvent,
    "response.function_call_arguments.delta": (
        ort.ResponseFunctionCallArgumentsDeltaStreamingEvent
    ),
    "response.function_call_arguments.done": ort.ResponseFunctionCallArgumentsDoneStreamingEvent,
    "response.output_text.annotation.added": (ort.ResponseOutputTextAnnotationAddedStreamingEvent),
    "error": ort.ErrorStreamingEvent,
}
# The package models raw reasoning deltas under the spec's older names; OpenAI, LM Studio and
# the gateway send `response.reasoning_text.*`, with the same fields.
RENAMED = {
    "response.reasoning_text.delta": (
        "response.reasoning.delta",
        ort.ResponseReasoningDeltaStreamingEvent,
    ),
    "response.reasoning_text.done": (
        "response.reasoning.done",
        ort.ResponseReasoningDoneStreamingEvent,
    ),
}
ITEMS: dict[str, Any] = {
    "message": ort.Message,
    "function_call": ort.FunctionCall,
    "function_call_output": ort.FunctionCallOutput,
    "reasoning": ort.ReasoningBody,
}


def _schema_quirk(obj: dict[str, Any]) -> dict[str, Any]:
    # The package's generated TextField types a json_schema format's `schema` as null (a codegen
    # slip: the spec has an object there), so the schema is blanked for validation only.
    fmt = (obj.get("text") or {}).get("format") or {}
    if fmt.get("type") != "json_schema":
        return obj
    obj = copy.deepcopy(obj)
    obj["text"]["format"]["schema"] = None
    return obj


def validate_object(obj: dict[str, Any]) -> None:
    """A complete response object: every spec field present and well typed."""
    ort.ResponseResource.model_validate(_schema_quirk(obj))
    missing = set(ort.ResponseResource.model_fields) - set(obj)
    assert not missing, f"fields missing from the response object: {missing}"


def validate_item(item: dict[str, Any]) -> None:
    """One input or output item."""
    ITEMS[item["type"]].model_validate(item)


def validate_event(event: dict[str, Any]) -> None:
    """One stream event, and the response object it carries."""
    kind = event["type"]
    if kind in RENAMED:
        name, model = RENAMED[kind]
        model.model_validate({**event, "type": name})
        return
    assert kind in EVENTS, f"event type {kind} is not in the spec"
    if "response" in event:
        event = {**event, "response": _schema_quirk(event["response"])}
        validate_object(event["response"])
    EVENTS[kind].model_validate(event)


def validate_stream(events: list[dict[str, Any]]) -> None:
    """Every event, numbered 0, 1, 2... in order, ending with exactly one terminal event."""
    assert [e["sequence_number"] for e in events] == list(range(len(events)))
    for event in events:
        validate_event(event)
    terminal = {"response.completed", "response.failed", "response.incomplete"}
    assert [e["type"] for e in events if e["type"] in terminal] == [events[-1]["type"]]


def _shell(**body: Any) -> Shell:
    return Shell("resp_test", "local/echo", parse_params(body), 1700000000)


def _run(events: list[n.Event], fail: GatewayError | None = None) -> list[dict[str, Any]]:
    renderer = ResponsesEvents(_shell(input="x"))
    out: list[dict[str, Any]] = []
    for event in events:
        out += renderer.feed(event)
    out += renderer.fail(fail) if fail else renderer.finish()
    return out


EVERYTHING: list[n.Event] = [
    n.Start(id="x", model="m"),
    n.ReasoningDelta("thinking "),
    n.ReasoningDelta("hard"),
    n.ReasoningDone(encrypted="enc"),
    n.TextDelta("Hello"),
    n.TextDelta(" world"),
    n.RefusalDelta("no"),
    n.ToolCallStart(index=0, call_id="call_1", name="a"),
    n.ToolCallStart(index=1, call_id="call_2", name="b"),
    n.ToolCallDelta(index=0, arguments='{"x":'),
    n.ToolCallDelta(index=1, arguments="{}"),
    n.ToolCallDelta(index=0, arguments="1}"),
    n.Finish("tool_calls", Usage(3, 4)),
]


def test_full_taxonomy_validates() -> None:
    events = _run(EVERYTHING)
    validate_stream(events)
    final = events[-1]["response"]
    assert [i["type"] for i in final["output"]] == [
        "reasoning",
        "message",
        "function_call",
        "function_call",
    ]
    assert final["output"][0]["encrypted_content"] == "enc"
    assert final["output"][1]["content"] == [
        {"type": "output_text", "text": "Hello world", "annotations": [], "logprobs": []},
        {"type": "refusal", "refusal": "no"},
    ]
    assert [i["arguments"] for i in final["output"][2:]] == ['{"x":1}', "{}"]
    assert final["usage"]["total_tokens"] == 7
    # An item is announced empty, before its content arrives.
    added = [e for e in events if e["type"] == "response.output_item.added"]
    assert added[1]["item"]["content"] == []


def test_failure_mid_stream_ends_with_error_then_failed() -> None:
    err = GatewayError(502, "cut", code="upstream_interrupted")
    events = _run(EVERYTHING[:6], fail=err)
    validate_stream(events)
    assert [e["type"] for e in events[-2:]] == ["error", "response.failed"]
    failed = events[-1]["response"]
    assert failed["error"] == {"code": "upstream_interrupted", "message": "cut"}
    assert failed["output"][-1]["status"] == "incomplete"


@pytest.mark.parametrize(("stop", "status"), [("length", "incomplete"), ("stop", "completed")])
def test_whole_object(stop: n.StopReason, status: str) -> None:
    resp = n.Response(
        id="x",
        model="m",
        items=[n.Message(role="assistant", parts=[n.TextPart("hi")])],
        stop_reason=stop,
    )
    obj = render_whole(
        _shell(input="x", text={"format": {"type": "json_schema", "name": "o", "schema": {}}}), resp
    )
    validate_object(obj)
    assert obj["status"] == status
    assert obj["text"]["format"]["schema"] == {}


def test_lifecycle_events_come_first_even_without_a_start() -> None:
    events = _run(EVERYTHING[1:])
    validate_stream(events)
    assert [e["type"] for e in events[:2]] == ["response.created", "response.in_progress"]
    assert _run([])[0]["type"] == "response.created"
