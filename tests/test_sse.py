"""The incremental SSE parser keeps every byte and finds events across any chunking."""

from __future__ import annotations

import pytest

from edge.sse import SSEError, SSEParser, encode

STREAM = (
    b'event: message_start\ndata: {"a":1}\n\n'
    b": a comment\n\n"
    b"data: line one\ndata: line two\r\n\r\n"
    b"data: [DONE]\n\n"
)


@pytest.mark.parametrize("size", [1, 2, 3, 5, 7, 64, len(STREAM)])
def test_any_chunking_gives_the_same_events(size: int) -> None:
    parser = SSEParser()
    events = []
    for i in range(0, len(STREAM), size):
        events += parser.feed(STREAM[i : i + size])
    events += parser.close()
    assert [(e.event, e.data) for e in events] == [
        ("message_start", '{"a":1}'),
        (None, "line one\nline two"),
        (None, "[DONE]"),
    ]
    assert events[-1].is_done
    # Raw bytes of the events plus the skipped comment reassemble the input exactly.
    assert b"".join(e.raw for e in events) == STREAM.replace(b": a comment\n\n", b"")


def test_unterminated_tail_is_flushed_on_close() -> None:
    parser = SSEParser()
    assert parser.feed(b"data: tail") == []
    (event,) = parser.close()
    assert event.data == "tail" and event.raw == b"data: tail"


def test_oversized_event_is_refused() -> None:
    parser = SSEParser(max_event_bytes=100)
    with pytest.raises(SSEError):
        parser.feed(b"data: " + b"x" * 200)


def test_invalid_utf8_is_refused() -> None:
    with pytest.raises(SSEError):
        SSEParser().feed(b"data: \xff\xfe\n\n")


def test_encode() -> None:
    assert encode(b"{}") == b"data: {}\n\n"
    assert encode(b"{}", "ping") == b"event: ping\ndata: {}\n\n"
