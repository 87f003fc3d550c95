"""Neutral answers rendered as Responses: the whole object, and the full stream event taxonomy.

`ResponsesEvents` turns neutral stream events into Responses event objects, numbered from 0,
tracking every output item so the final object (and a `response.failed` after an error) carries
exactly what was streamed.
"""

from __future__ import annotations

import copy
from dataclasses import dataclass, field
from typing import Any

from edge.errors import GatewayError, error_body
from edge.translate import neutral as n
from edge.translate.common import new_id, now
from edge.translate.responses_items import (
    function_call_item,
    message_item,
    output_items,
    reasoning_item,
)
from edge.translate.responses_object import Shell, error_json
from edge.usage import Usage

TERMINAL_EVENTS = frozenset({"response.completed", "response.failed", "response.incomplete"})
_INCOMPLETE = {"length": "max_output_tokens", "content_filter": "content_filter"}


def final_status(stop: n.StopReason) -> tuple[str, str | None]:
    """(status, incomplete reason) for a stop reason."""
    reason = _INCOMPLETE.get(stop)
    return ("incomplete", reason) if reason else ("completed", None)


def render_whole(shell: Shell, resp: n.Response) -> dict[str, Any]:
    """A non-streamed answer as a complete response object."""
    status, reason = final_status(resp.stop_reason)
    return shell.render(
        status, output_items(resp.items), resp.usage, incomplete=reason, completed_at=now()
    )


@dataclass(slots=True)
class _Item:
    index: int
    item: dict[str, Any]
    part: dict[str, Any] | None = None  # the open content part, if any
    text: list[str] = field(default_factory=list)


class ResponsesEvents:
    """Neutral stream events to Responses event objects (each with its sequence number)."""

    def __init__(self, shell: Shell, announce: bool = True) -> None:
        self.shell = shell
        # False when the lifecycle events are written by someone else (a background run's queue).
        self.announce = announce
        self.seq = 0
        self.output: list[dict[str, Any]] = []
        self.usage: Usage | None = None
        self.stop: n.StopReason = "stop"
        self.final: dict[str, Any] | None = None
        self._current: _Item | None = None  # the open message or reasoning item
        self._calls: dict[int, _Item] = {}  # open function calls by neutral index
        self._started = False

    def _event(self, kind: str, **fields: Any) -> dict[str, Any]:
        event = {"type": kind, "sequence_number": self.seq, **fields}
        self.seq += 1
        return event

    def start(self) -> list[dict[str, Any]]:
        """The opening lifecycle events (none when the run was announced elsewhere)."""
        if not self.announce:
            return []
        snapshot = self.shell.render("in_progress")
        return [
            self._event("response.created", response=snapshot),
            self._event("response.in_progress", response=snapshot),
        ]

    def _open(self, item: dict[str, Any]) -> tuple[_Item, dict[str, Any]]:
        opened = _Item(len(self.output), item)
        self.output.append(item)
        # Events carry copies: the item keeps growing after it is announced.
        added = self._event(
            "response.output_item.added", output_index=opened.index, item=copy.deepcopy(item)
        )
        return opened, added

    def _part(self, cur: _Item, part: dict[str, Any]) -> list[dict[str, Any]]:
        cur.part, cur.text = part, []
        cur.item["content"].append(part)
        return [
            self._event(
                "response.content_part.added",
                item_id=cur.item["id"],
                output_index=cur.index,
                content_index=len(cur.item["content"]) - 1,
                part={**part},
            )
        ]

    def _close_part(self, cur: _Item) -> list[dict[str, Any]]:
        part = cur.part
        if part is None:
            return []
        cur.part = None
        where = {
            "item_id": cur.item["id"],
            "output_index": cur.index,
            "content_index": len(cur.item["content"]) - 1,
        }
        text = "".join(cur.text)
        kind = part["type"]
        if kind == "refusal":
            part["refusal"] = text
            done = self._event("response.refusal.done", **where, refusal=text)
        elif kind == "reasoning_text":
            part["text"] = text
            done = self._event("response.reasoning_text.done", **where, text=text)
        else:
            part["text"] = text
            done = self._event("response.output_text.done", **where, text=text, logprobs=[])
        return [done, self._event("response.content_part.done", **where, part={**part})]

    def _close_current(self, status: str = "completed") -> list[dict[str, Any]]:
        cur, self._current = self._current, None
        if cur is None:
            return []
        out = self._close_part(cur)
        cur.item["status"] = status
        done = {**cur.item, "content": [dict(p) for p in cur.item["content"]]}
        return [*out, self._event("response.output_item.done", output_index=cur.index, item=done)]

    def _ensure(self, kind: str, part_type: str) -> list[dict[str, Any]]:
        out: list[dict[str, Any]] = []
        cur = self._current
        if cur is None or cur.item["type"] != kind:
            out += self._close_current()
            if kind == "message":
                item = message_item(new_id("msg_"), [], status="in_progress")
            else:
                item = reasoning_item(new_id("rs_"), "", [], status="in_progress")
            cur, added = self._open(item)
            self._current = cur
            out.append(added)
        if cur.part is None or cur.part["type"] != part_type:
            out += self._close_part(cur)
            if part_type == "output_text":
                part: dict[str, Any] = {"type": part_type, "text": "", "annotations": []}
                part["logprobs"] = []
            elif part_type == "refusal":
                part = {"type": "refusal", "refusal": ""}
            else:
                part = {"type": part_type, "text": ""}
            out += self._part(cur, part)
        return out

    def _delta(self, kind: str, part_type: str, event: str, text: str) -> list[dict[str, Any]]:
        out = self._ensure(kind, part_type)
        cur = self._current
        assert cur is not None
        cur.text.append(text)
        extra: dict[str, Any] = {"logprobs": []} if event == "response.output_text.delta" else {}
        out.append(
            self._event(
                event,
                item_id=cur.item["id"],
                output_index=cur.index,
                content_index=len(cur.item["content"]) - 1,
                delta=text,
                **extra,
            )
        )
        return out

    def feed(self, event: n.Event) -> list[dict[str, Any]]:
        """Responses events for one neutral event (possibly none)."""
        if not self._started:
            # The lifecycle events come first even if a provider's stream does not start with
            # a Start event.
            self._started = True
            return self.start() + ([] if isinstance(event, n.Start) else self.feed(event))
        if isinstance(event, n.Start):
            return []
        if isinstance(event, n.TextDelta):
            if not event.text:
                return []
            return self._delta("message", "output_text", "response.output_text.delta", event.text)
        if isinstance(event, n.RefusalDelta):
            return self._delta("message", "refusal", "response.refusal.delta", event.text)
        if isinstance(event, n.ReasoningDelta):
            if not event.text:
                return []
            return self._delta(
                "reasoning", "reasoning_text", "response.reasoning_text.delta", event.text
            )
        if isinstance(event, n.ReasoningDone):
            cur = self._current
            if cur is not None and cur.item["type"] == "reasoning":
                cur.item["encrypted_content"] = event.encrypted
                return self._close_current()
            return []
        if isinstance(event, n.ToolCallStart):
            out = self._close_current()
            item = function_call_item(
                new_id("fc_"), event.call_id, event.name, "", status="in_progress"
            )
            call, added = self._open(item)
            self._calls[event.index] = call
            return [*out, added]
        if isinstance(event, n.ToolCallDelta):
            open_call = self._calls.get(event.index)
            if open_call is None or not event.arguments:
                return []
            open_call.text.append(event.arguments)
            return [
                self._event(
                    "response.function_call_arguments.delta",
                    item_id=open_call.item["id"],
                    output_index=open_call.index,
                    delta=event.arguments,
                )
            ]
        if isinstance(event, n.Finish):
            self.stop = event.stop_reason
            self.usage = event.usage or self.usage
        elif isinstance(event, n.UsageUpdate):
            self.usage = event.usage
        return []

    def _close_calls(self, status: str) -> list[dict[str, Any]]:
        out: list[dict[str, Any]] = []
        for call in sorted(self._calls.values(), key=lambda c: c.index):
            args = "".join(call.text)
            call.item["arguments"], call.item["status"] = args, status
            where = {"item_id": call.item["id"], "output_index": call.index}
            done = self._event("response.function_call_arguments.done", **where, arguments=args)
            out.append(done)
            out.append(
                self._event("response.output_item.done", output_index=call.index, item=call.item)
            )
        self._calls.clear()
        return out

    def finish(self) -> list[dict[str, Any]]:
        """Close every open item, then `response.completed` (or `.incomplete`)."""
        status, reason = final_status(self.stop)
        item_status = "completed" if status == "completed" else "incomplete"
        out = [] if self._started else self.start()
        self._started = True
        out += self._close_current(item_status) + self._close_calls(item_status)
        self.final = self.shell.render(
            status, self.output, self.usage, incomplete=reason, completed_at=now()
        )
        return [*out, self._event(f"response.{status}", response=self.final)]

    def fail(self, err: GatewayError) -> list[dict[str, Any]]:
        """After a failure mid-stream: an `error` event, then `response.failed`."""
        for cur in [self._current, *self._calls.values()]:
            if cur is not None:
                cur.item["status"] = "incomplete"
        self._current = None
        self._calls.clear()
        self.final = self.shell.render(
            "failed", self.output, self.usage, error=error_json(err), completed_at=None
        )
        detail = error_body("openai", err)["error"]
        return [
            self._event("error", error=detail),
            self._event("response.failed", response=self.final),
        ]
