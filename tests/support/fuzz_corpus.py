"""Hypothesis strategies for the request shapes a translated call walks deepest, where fuzzing
once found 500s: Gemini `inlineData` / `fileData` parts, Anthropic `tool_result` content of
every shape, Responses input items of every type, and the schemas and settings the in-process
`local/echo` model reads (it fills tool arguments in from a tool's schema), on every client API.

Each body is a valid one of its API with up to three of its values (anywhere in it) replaced by
an odd value, dropped, or joined by an odd sibling: odd values are numeric extremes, non-ASCII
text, wrong types and nesting past what orjson writes (254 levels). A body odd at its top fails
the first check it meets; one odd deep inside gets as far as the code that walks it."""

from __future__ import annotations

import json
from typing import Any

from hypothesis import strategies as st

MODEL = "local/echo"
EXTREMES: list[Any] = [
    None,
    True,
    False,
    0,
    -1,
    2**31,
    2**63,
    -(2**63) - 1,
    2**64,
    2**70,
    1e308,
    -1e308,
    5e-324,
    -0.0,
    1.5,
    "",
    "x",
    "é漢字🙂",
    "\u0000",
    "\u202e",
    [],
    {},
    [None],
    {"": None},
    [[]],
    {"type": None},
]
MIMES = ["image/png", "image/", "application/pdf", "text/plain", "", "audio/wav", "é/漢"]
URLS = [
    "data:image/png;base64,iVBORw0KGgo=",
    "data:;base64,AAAA",
    "data:,x",
    "data:",
    "gs://bucket/object",
    "https://example.com/a.png",
    "file:///etc/passwd",
    "",
]
TYPES = ["object", "array", "string", "integer", "number", "boolean", "null", "OBJECT", "ARRAY"]


def _deep(depth: int, kind: str) -> Any:
    value: Any = "leaf"
    for _ in range(depth):
        value = [value] if kind == "array" else {"k": value}
    return value


scalars = (
    st.sampled_from(EXTREMES)
    | st.integers(min_value=-(2**70), max_value=2**70)
    | st.floats(allow_nan=False, allow_infinity=False)
    | st.text(max_size=20)
)
_shallow = st.recursive(
    scalars,
    lambda children: (
        st.lists(children, max_size=3) | st.dictionaries(st.text(max_size=8), children, max_size=3)
    ),
    max_leaves=8,
)
_deeply = st.builds(
    _deep,
    st.sampled_from([100, 127, 128, 200, 254, 255, 300, 600]),
    st.sampled_from(["array", "object"]),
)
# Shallow odd values, and now and then one nested deeper than anything walks comfortably.
odd = st.one_of(_shallow, _shallow, _shallow, _deeply)


def _object(**fields: st.SearchStrategy[Any]) -> st.SearchStrategy[dict[str, Any]]:
    """An object with any of these fields."""
    return st.fixed_dictionaries({}, optional=fields)


def _deep_schema(depth: int, arrays: bool) -> dict[str, Any]:
    schema: dict[str, Any] = {"type": "string"}
    for _ in range(depth if arrays else depth // 2):
        if arrays:
            schema = {"type": "array", "items": schema}
        else:
            schema = {"type": "object", "properties": {"a": schema}}
    return schema


# JSON schemas as the echo model reads them (a tool's parameters, a response format): any
# object is one as far as parsing goes, so its members are of every type.
schemas: st.SearchStrategy[Any] = st.deferred(
    lambda: st.one_of(
        st.fixed_dictionaries(
            {},
            optional={
                "type": st.sampled_from(TYPES) | st.lists(st.sampled_from(TYPES), max_size=3) | odd,
                "enum": st.lists(scalars, max_size=3) | odd,
                "properties": st.dictionaries(st.sampled_from(["a", "b", "é"]), schemas, max_size=2)
                | odd,
                "required": st.lists(st.sampled_from(["a", "b", "c"]), max_size=3) | odd,
                "items": schemas | odd,
                "description": st.text(max_size=10),
            },
        ),
        st.builds(_deep_schema, st.sampled_from([50, 110, 122, 123, 124, 200]), st.booleans()),
    )
)


# Gemini ------------------------------------------------------------------------------------

_blob = _object(mimeType=st.sampled_from(MIMES), mime_type=st.sampled_from(MIMES), data=st.text())
_file_ref = _object(
    fileUri=st.sampled_from(URLS), file_uri=st.sampled_from(URLS), mimeType=st.sampled_from(MIMES)
)
gemini_parts = st.one_of(
    st.fixed_dictionaries({"inlineData": _blob}),
    st.fixed_dictionaries({"inline_data": _blob}),
    st.fixed_dictionaries({"fileData": _file_ref}),
    st.fixed_dictionaries({"file_data": _file_ref}),
    st.fixed_dictionaries({"inlineData": _blob, "fileData": _file_ref}),
    st.fixed_dictionaries({"text": st.text(max_size=10)}),
    _object(text=st.text(max_size=10), thought=st.booleans(), thoughtSignature=st.text(max_size=5)),
    st.fixed_dictionaries(
        {"functionCall": _object(name=st.sampled_from(["f", "g"]), args=odd, id=st.text())}
    ),
    st.fixed_dictionaries(
        {"functionResponse": _object(name=st.sampled_from(["f"]), response=odd, id=st.text())}
    ),
)
_gemini_content = _object(
    role=st.sampled_from(["user", "model", "function"]),
    parts=st.lists(gemini_parts, min_size=1, max_size=4),
)
_declaration = _object(
    name=st.sampled_from(["f", "g", ""]),
    description=st.text(max_size=5),
    parameters=schemas,
    parametersJsonSchema=schemas,
)


@st.composite
def gemini_bodies(draw: st.DrawFn) -> dict[str, Any]:
    """A generateContent body: media parts, calls and responses, declarations, settings."""
    body: dict[str, Any] = {"contents": draw(st.lists(_gemini_content, min_size=1, max_size=3))}
    optional = {
        "systemInstruction": _object(parts=st.lists(gemini_parts, max_size=2)),
        "tools": st.lists(
            _object(functionDeclarations=st.lists(_declaration, max_size=2)), max_size=2
        ),
        "toolConfig": _object(
            functionCallingConfig=_object(
                mode=st.sampled_from(["AUTO", "ANY", "NONE", "any", "VALIDATED"]),
                allowedFunctionNames=st.lists(st.sampled_from(["f", "g"]), max_size=2),
            )
        ),
        "generationConfig": _object(
            maxOutputTokens=st.sampled_from([1, 16, 2**31, 2**63 - 1]),
            temperature=st.floats(0, 2),
            topK=st.integers(1, 2**31 - 1),
            seed=st.integers(-(2**31), 2**31 - 1),
            stopSequences=st.lists(st.text(max_size=4), max_size=3),
            responseMimeType=st.sampled_from(["application/json", "text/plain"]),
            responseSchema=schemas,
            responseJsonSchema=schemas,
            thinkingConfig=_object(
                thinkingBudget=st.integers(-1, 2**31), thinkingLevel=st.sampled_from(["low", "x"])
            ),
            responseModalities=st.lists(st.sampled_from(["TEXT", "text"]), max_size=2),
        ),
        "safetySettings": st.lists(_object(category=st.text(), threshold=st.text()), max_size=2),
    }
    for name in draw(st.lists(st.sampled_from(sorted(optional)), max_size=3, unique=True)):
        body[name] = draw(optional[name])
    return body


# Anthropic ---------------------------------------------------------------------------------

_source = st.one_of(
    _object(type=st.just("base64"), media_type=st.sampled_from(MIMES), data=st.text()),
    _object(type=st.just("url"), url=st.sampled_from(URLS)),
    _object(type=st.just("text"), media_type=st.just("text/plain"), data=st.text()),
)
_blocks = st.one_of(
    st.fixed_dictionaries({"type": st.just("text"), "text": st.text(max_size=10)}),
    st.fixed_dictionaries({"type": st.just("image"), "source": _source}),
    st.fixed_dictionaries({"type": st.just("document"), "source": _source}),
)
# Tool result content of every shape a valid body has: text, or a list of blocks; the
# mutations give it the others (null, numbers, objects, odd blocks, nested results).
_tool_result = st.fixed_dictionaries(
    {"type": st.just("tool_result"), "tool_use_id": st.just("toolu_1")},
    optional={
        "content": st.text(max_size=10) | st.lists(_blocks, max_size=3),
        "is_error": st.booleans(),
    },
)
_assistant_blocks = st.one_of(
    st.fixed_dictionaries(
        {"type": st.just("tool_use"), "id": st.just("toolu_1"), "name": st.just("f")},
        optional={"input": st.dictionaries(st.text(max_size=4), odd, max_size=2)},
    ),
    _object(type=st.just("thinking"), thinking=st.text(max_size=5), signature=st.text()),
    _object(type=st.just("redacted_thinking"), data=st.text(max_size=5)),
    st.fixed_dictionaries({"type": st.just("text"), "text": st.text(max_size=5)}),
)
_anthropic_messages = st.lists(
    st.one_of(
        st.fixed_dictionaries(
            {
                "role": st.just("user"),
                "content": st.lists(_tool_result | _blocks, min_size=1, max_size=3),
            }
        ),
        st.fixed_dictionaries(
            {"role": st.just("assistant"), "content": st.lists(_assistant_blocks, max_size=3)}
        ),
        st.fixed_dictionaries(
            {"role": st.sampled_from(["user", "assistant"]), "content": st.text(max_size=5)}
        ),
    ),
    min_size=1,
    max_size=4,
)


@st.composite
def messages_bodies(draw: st.DrawFn) -> dict[str, Any]:
    """A Messages body: tool results and uses, sources, thinking, tools and settings."""
    body: dict[str, Any] = {
        "model": MODEL,
        "max_tokens": draw(st.sampled_from([1, 16, 2**31, 2**63 - 1])),
        "messages": draw(_anthropic_messages),
    }
    optional = {
        "system": st.text(max_size=5)
        | st.lists(st.fixed_dictionaries({"type": st.just("text"), "text": st.text()}), max_size=2),
        "tools": st.lists(
            st.fixed_dictionaries({"name": st.sampled_from(["f", "g"]), "input_schema": schemas}),
            max_size=2,
        ),
        "tool_choice": st.sampled_from(
            [{"type": "auto"}, {"type": "any"}, {"type": "tool", "name": "f"}, {"type": "none"}]
        ),
        "stop_sequences": st.lists(st.text(max_size=4), max_size=3),
        "thinking": st.sampled_from(
            [{"type": "enabled", "budget_tokens": 1024}, {"type": "adaptive"}]
        ),
        "output_config": _object(
            effort=st.sampled_from(["low", "high"]),
            format=st.fixed_dictionaries({"type": st.just("json_schema"), "schema": schemas}),
        ),
        "metadata": _object(user_id=st.text(max_size=5)),
        "stream": st.booleans(),
        "top_k": st.integers(1, 2**63 - 1),
    }
    for name in draw(st.lists(st.sampled_from(sorted(optional)), max_size=4, unique=True)):
        body[name] = draw(optional[name])
    return body


# Responses ---------------------------------------------------------------------------------

_responses_parts = st.one_of(
    st.fixed_dictionaries(
        {"type": st.sampled_from(["input_text", "output_text"]), "text": st.text()}
    ),
    st.fixed_dictionaries({"type": st.just("refusal"), "refusal": st.text(max_size=5)}),
    st.fixed_dictionaries(
        {"type": st.just("input_image"), "image_url": st.sampled_from(URLS)},
        optional={"detail": st.sampled_from(["auto", "low", "high"])},
    ),
    st.fixed_dictionaries(
        {"type": st.just("input_file")},
        optional={
            "file_data": st.sampled_from(URLS),
            "file_url": st.sampled_from(URLS),
            "filename": st.text(max_size=5),
        },
    ),
)
_summary = st.lists(
    st.fixed_dictionaries({"type": st.just("summary_text"), "text": st.text()}), max_size=2
)
responses_items = st.one_of(
    st.fixed_dictionaries(
        {
            "role": st.sampled_from(["user", "assistant", "system", "developer"]),
            "content": st.text(max_size=5) | st.lists(_responses_parts, max_size=3),
        },
        optional={"type": st.just("message"), "id": st.text(max_size=8)},
    ),
    st.fixed_dictionaries(
        {"type": st.just("function_call"), "call_id": st.just("call_1"), "name": st.just("f")},
        optional={"arguments": st.sampled_from(["{}", "", "[1]", "{"]), "id": st.text()},
    ),
    st.fixed_dictionaries(
        {
            "type": st.just("function_call_output"),
            "call_id": st.just("call_1"),
            "output": st.text(max_size=5) | st.lists(_responses_parts, max_size=3),
        }
    ),
    st.fixed_dictionaries(
        {"type": st.just("reasoning")},
        optional={
            "summary": _summary,
            "content": _summary,
            "encrypted_content": st.text(max_size=5),
            "id": st.text(),
        },
    ),
    st.fixed_dictionaries(
        {"type": st.sampled_from(["web_search_call", "mcp_call", "item_reference"])},
        optional={"id": st.text(max_size=5)},
    ),
)


@st.composite
def responses_bodies(draw: st.DrawFn) -> dict[str, Any]:
    """A Responses create body: input items of every type, tools and settings."""
    body: dict[str, Any] = {
        "model": MODEL,
        "input": draw(st.lists(responses_items, min_size=1, max_size=4) | st.text(max_size=5)),
        "store": draw(st.sampled_from([False, False, True])),
    }
    optional = {
        "instructions": st.text(max_size=5),
        "tools": st.lists(
            st.fixed_dictionaries(
                {"type": st.just("function"), "name": st.sampled_from(["f", "g"])},
                optional={"parameters": schemas},
            ),
            max_size=2,
        ),
        "tool_choice": st.sampled_from(
            ["auto", "required", "none", {"type": "function", "name": "f"}]
        ),
        "text": st.fixed_dictionaries(
            {
                "format": st.one_of(
                    st.just({"type": "text"}),
                    st.just({"type": "json_object"}),
                    st.fixed_dictionaries(
                        {"type": st.just("json_schema"), "name": st.just("r"), "schema": schemas}
                    ),
                )
            }
        ),
        "max_output_tokens": st.sampled_from([1, 16, 2**31, 2**63 - 1]),
        "stream": st.booleans(),
        "reasoning": _object(effort=st.sampled_from(["low", "high"])),
        "metadata": st.dictionaries(st.text(max_size=4), st.text(max_size=4), max_size=2),
    }
    for name in draw(st.lists(st.sampled_from(sorted(optional)), max_size=4, unique=True)):
        body[name] = draw(optional[name])
    return body


# Chat Completions --------------------------------------------------------------------------

_chat_parts = st.one_of(
    st.fixed_dictionaries({"type": st.just("text"), "text": st.text(max_size=5)}),
    st.fixed_dictionaries(
        {
            "type": st.just("image_url"),
            "image_url": st.sampled_from(URLS)
            | st.fixed_dictionaries(
                {"url": st.sampled_from(URLS)}, optional={"detail": st.sampled_from(["auto"])}
            ),
        }
    ),
    st.fixed_dictionaries(
        {
            "type": st.just("file"),
            "file": st.fixed_dictionaries(
                {"file_data": st.sampled_from(URLS)}, optional={"filename": st.text()}
            ),
        }
    ),
    st.fixed_dictionaries({"type": st.just("refusal"), "refusal": st.text(max_size=5)}),
)
_chat_content = st.text(max_size=5) | st.lists(_chat_parts, max_size=3)
_chat_messages = st.lists(
    st.one_of(
        st.fixed_dictionaries(
            {"role": st.sampled_from(["system", "developer", "user"]), "content": _chat_content}
        ),
        st.fixed_dictionaries(
            {"role": st.just("assistant")},
            optional={
                "content": _chat_content,
                "tool_calls": st.lists(
                    st.fixed_dictionaries(
                        {"id": st.just("call_1"), "type": st.just("function")},
                        optional={
                            "function": st.fixed_dictionaries(
                                {
                                    "name": st.just("f"),
                                    "arguments": st.sampled_from(["{}", "", "{"]),
                                }
                            )
                        },
                    ),
                    max_size=2,
                ),
                "reasoning_content": st.text(max_size=5),
                "refusal": st.text(max_size=5),
            },
        ),
        st.fixed_dictionaries(
            {"role": st.just("tool"), "tool_call_id": st.just("call_1"), "content": _chat_content}
        ),
    ),
    min_size=1,
    max_size=4,
)


@st.composite
def chat_bodies(draw: st.DrawFn) -> dict[str, Any]:
    """A Chat Completions body: parts, tool calls and results, schemas and settings."""
    body: dict[str, Any] = {"model": MODEL, "messages": draw(_chat_messages)}
    optional = {
        "tools": st.lists(
            st.fixed_dictionaries(
                {
                    "type": st.just("function"),
                    "function": st.fixed_dictionaries(
                        {"name": st.sampled_from(["f", "g"])}, optional={"parameters": schemas}
                    ),
                }
            ),
            max_size=2,
        ),
        "tool_choice": st.sampled_from(
            ["auto", "required", "none", {"type": "function", "function": {"name": "f"}}]
        ),
        "response_format": st.one_of(
            st.just({"type": "text"}),
            st.just({"type": "json_object"}),
            st.fixed_dictionaries(
                {
                    "type": st.just("json_schema"),
                    "json_schema": st.fixed_dictionaries({"name": st.just("r"), "schema": schemas}),
                }
            ),
        ),
        "max_tokens": st.sampled_from([1, 16, 2**31, 2**63 - 1]),
        "max_completion_tokens": st.sampled_from([1, 16, 2**31]),
        "stop": st.text(max_size=3) | st.lists(st.text(max_size=3), max_size=3),
        "stream": st.booleans(),
        "stream_options": _object(include_usage=st.booleans()),
        "metadata": st.dictionaries(st.text(max_size=4), st.text(max_size=4), max_size=2),
    }
    for name in draw(st.lists(st.sampled_from(sorted(optional)), max_size=4, unique=True)):
        body[name] = draw(optional[name])
    return body


# Mutations ---------------------------------------------------------------------------------


def _places(body: Any) -> list[tuple[Any, Any]]:
    """Every (container, key or index) in a body, walked without recursion."""
    places: list[tuple[Any, Any]] = []
    stack = [body]
    while stack:
        node = stack.pop()
        keys = list(node) if isinstance(node, dict) else range(len(node))
        for key in keys:
            places.append((node, key))
            if isinstance(node[key], dict | list):
                stack.append(node[key])
    return places


def _copy(value: Any) -> Any:
    # Strategies hand out shared objects (the `[]` and `{}` of EXTREMES): a later mutation
    # must never change the one the next example draws.
    return json.loads(json.dumps(value))


@st.composite
def mutated(draw: st.DrawFn, body: dict[str, Any]) -> dict[str, Any]:
    """`body` (a fresh copy) with up to three values replaced by odd ones, dropped, or given an
    odd sibling."""
    body = _copy(body)
    for _ in range(draw(st.integers(0, 3))):
        places = _places(body)
        if not places:
            break
        node, key = draw(st.sampled_from(places))
        action = draw(st.sampled_from(["replace", "replace", "replace", "drop", "add"]))
        if action == "replace":
            node[key] = _copy(draw(odd))
        elif action == "drop":
            del node[key]
        elif isinstance(node, dict):
            node[draw(st.sampled_from(["type", "content", "data", "x", "é"]))] = _copy(draw(odd))
        else:
            node.insert(key, _copy(draw(odd)))
    return body


GEMINI_PATHS = [
    "/v1beta/models/local-echo:generateContent",
    "/v1beta/models/local-echo:streamGenerateContent",
    "/v1beta/models/local-echo:streamGenerateContent?alt=sse",
]
API_BODIES = {
    "chat": chat_bodies,
    "responses": responses_bodies,
    "messages": messages_bodies,
    "gemini": gemini_bodies,
}


@st.composite
def corpus_requests(draw: st.DrawFn) -> tuple[str, bytes]:
    """(path, body) of a call to the echo model on any client API, from the corpus above."""
    api = draw(st.sampled_from(sorted(API_BODIES)))
    body = draw(mutated(draw(API_BODIES[api]())))
    path = {
        "chat": "/v1/chat/completions",
        "responses": "/v1/responses",
        "messages": "/v1/messages",
    }.get(api) or draw(st.sampled_from(GEMINI_PATHS))
    # The standard library's encoder writes integers past 64 bits, which orjson will not.
    return path, json.dumps(body).encode()
