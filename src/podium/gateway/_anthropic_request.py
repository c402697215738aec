"""What podium accepts at `POST /v1/messages`: Anthropic's Messages API request, bounded and validated.

What it accepts is deliberate. Unknown top-level fields are refused (400, "Extra inputs are not permitted"), as
Anthropic's own API does, so a client never believes a setting took effect when podium ignored it. Every field
the `anthropic` SDK 2.10 can send is known, and is either honoured or accepted and ignored:

- honoured: model, messages (text, image, tool_use, tool_result; system-role messages), system, max_tokens,
  stop_sequences, temperature, top_p, tools (custom tools), tool_choice (with disable_parallel_tool_use), stream,
  metadata.user_id (forwarded as OpenAI's `user`), output_config.format (a JSON schema, forwarded as OpenAI's
  `response_format`);
- ignored, because podium decides them or OpenAI's API has no slot for them: top_k, thinking (answers come without
  thinking blocks; thinking blocks in the history are dropped), output_config.effort, cache_control,
  service_tier, speed, inference_geo, container, diagnostics, user_profile_id, workspace_id;
- refused with the fix named: Anthropic's server tools (web search, code execution, ...), images by file id.
"""

from __future__ import annotations

from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field, StringConstraints, ValidationError, model_validator

from podium.errors import UsageError

MAX_MESSAGES = 10_000
MAX_BLOCKS = 1_000  # content blocks in one message or tool result
MAX_TOOLS = 256
MAX_STOP_SEQUENCES = 16
MAX_OUTPUT_TOKENS = 1_000_000
MAX_TEXT_CHARS = 4_000_000  # one text; the route bounds the whole body's bytes before this
MAX_IMAGE_CHARS = 30_000_000  # base64 of Anthropic's 20 MB image limit

_Text = Annotated[str, StringConstraints(max_length=MAX_TEXT_CHARS)]
_Short = Annotated[str, StringConstraints(max_length=256)]
_ModelName = Annotated[str, StringConstraints(min_length=1, max_length=256)]
_ToolName = Annotated[str, StringConstraints(pattern=r"^[a-zA-Z0-9_-]{1,128}$")]
_ToolId = Annotated[str, StringConstraints(pattern=r"^[a-zA-Z0-9_-]{1,256}$")]
_Unit = Annotated[float, Field(ge=0.0, le=1.0)]
_Ignored = dict[str, Any] | None  # accepted, validated as an object, not forwarded


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True, strict=True)


class CacheControl(_Strict):
    type: Literal["ephemeral"]
    ttl: Literal["5m", "1h"] | None = None


class TextBlock(_Strict):
    type: Literal["text"]
    text: _Text
    cache_control: CacheControl | None = None
    citations: Annotated[list[dict[str, Any]], Field(max_length=MAX_BLOCKS)] | None = None


class Base64ImageSource(_Strict):
    type: Literal["base64"]
    media_type: Literal["image/jpeg", "image/png", "image/gif", "image/webp"]
    data: Annotated[str, StringConstraints(max_length=MAX_IMAGE_CHARS, pattern=r"^[A-Za-z0-9+/=\s]*$")]


class URLImageSource(_Strict):
    type: Literal["url"]
    url: Annotated[str, StringConstraints(max_length=8192, pattern=r"^https?://\S+$")]


class ImageBlock(_Strict):
    type: Literal["image"]
    source: Annotated[Base64ImageSource | URLImageSource, Field(discriminator="type")]
    cache_control: CacheControl | None = None
    transformations: _Ignored = None

    @model_validator(mode="before")
    @classmethod
    def _no_file_sources(cls, data: Any) -> Any:
        source = data.get("source") if isinstance(data, dict) else None
        if isinstance(source, dict) and source.get("type") == "file":
            raise ValueError(
                "images by file id need Anthropic's Files API, which podium does not serve; send the image inline "
                "(base64) or by URL"
            )
        return data


class ToolUseBlock(_Strict):
    type: Literal["tool_use"]
    id: _ToolId
    name: _ToolName
    input: dict[str, Any]
    cache_control: CacheControl | None = None
    caller: _Ignored = None
    toolset_name: _Short | None = None


_ToolResultPart = Annotated[TextBlock | ImageBlock, Field(discriminator="type")]


class ToolResultBlock(_Strict):
    type: Literal["tool_result"]
    tool_use_id: _ToolId
    content: _Text | Annotated[list[_ToolResultPart], Field(max_length=MAX_BLOCKS)] = ""
    is_error: bool = False
    cache_control: CacheControl | None = None
    toolset_name: _Short | None = None


class ThinkingBlock(_Strict):
    """Extended thinking from an earlier answer: accepted in the history and dropped (it is Anthropic-signed and
    means nothing to another provider)."""

    type: Literal["thinking"]
    thinking: _Text
    signature: _Text


class RedactedThinkingBlock(_Strict):
    type: Literal["redacted_thinking"]
    data: _Text


ContentBlock = Annotated[
    TextBlock | ImageBlock | ToolUseBlock | ToolResultBlock | ThinkingBlock | RedactedThinkingBlock,
    Field(discriminator="type"),
]
_ALLOWED_BLOCKS = {
    "user": {"text", "image", "tool_result"},
    "assistant": {"text", "tool_use", "thinking", "redacted_thinking"},
    "system": {"text"},
}


class Message(_Strict):
    role: Literal["user", "assistant", "system"]
    content: _Text | Annotated[list[ContentBlock], Field(max_length=MAX_BLOCKS)]

    @model_validator(mode="after")
    def _blocks_fit_the_role(self) -> Message:
        if isinstance(self.content, list):
            for block in self.content:
                if block.type not in _ALLOWED_BLOCKS[self.role]:
                    raise ValueError(f"{self.role} messages cannot hold {block.type} blocks")
        return self


class Tool(_Strict):
    name: _ToolName
    input_schema: dict[str, Any]
    description: _Text | None = None
    type: Literal["custom"] | None = None
    strict: bool | None = None
    cache_control: CacheControl | None = None
    defer_loading: bool | None = None
    eager_input_streaming: bool | None = None
    input_examples: Annotated[list[dict[str, Any]], Field(max_length=100)] | None = None
    allowed_callers: Annotated[list[_Short], Field(max_length=10)] | None = None

    @model_validator(mode="before")
    @classmethod
    def _custom_tools_only(cls, data: Any) -> Any:
        kind = data.get("type") if isinstance(data, dict) else None
        if kind not in (None, "custom"):
            raise ValueError(
                f"tool type {kind!r} is one of Anthropic's server tools, which podium does not run; declare a custom "
                "tool (name, description, input_schema) and run it in your client"
            )
        return data

    @model_validator(mode="after")
    def _schema_is_an_object(self) -> Tool:
        if self.input_schema.get("type") != "object":
            raise ValueError(f'tool {self.name!r}: input_schema must be a JSON schema with "type": "object"')
        return self


class ToolChoiceAuto(_Strict):
    type: Literal["auto"]
    disable_parallel_tool_use: bool | None = None


class ToolChoiceAny(_Strict):
    type: Literal["any"]
    disable_parallel_tool_use: bool | None = None


class ToolChoiceTool(_Strict):
    type: Literal["tool"]
    name: _ToolName
    disable_parallel_tool_use: bool | None = None


class ToolChoiceNone(_Strict):
    type: Literal["none"]


ToolChoice = Annotated[ToolChoiceAuto | ToolChoiceAny | ToolChoiceTool | ToolChoiceNone, Field(discriminator="type")]


class Metadata(_Strict):
    user_id: _Short | None = None


class JSONOutputFormat(_Strict):
    type: Literal["json_schema"]
    schema_: Annotated[dict[str, Any], Field(alias="schema")]


class OutputConfig(_Strict):
    effort: Literal["low", "medium", "high", "xhigh", "max"] | None = None
    format: JSONOutputFormat | None = None


class MessagesRequest(_Strict):
    """The body of `POST /v1/messages`, bounded (see the module docstring for what is honoured or ignored)."""

    model: _ModelName
    messages: Annotated[list[Message], Field(min_length=1, max_length=MAX_MESSAGES)]
    max_tokens: Annotated[int, Field(ge=1, le=MAX_OUTPUT_TOKENS)]
    system: _Text | Annotated[list[TextBlock], Field(max_length=MAX_BLOCKS)] | None = None
    stop_sequences: (
        Annotated[
            list[Annotated[str, StringConstraints(min_length=1, max_length=1000)]], Field(max_length=MAX_STOP_SEQUENCES)
        ]
        | None
    ) = None
    temperature: _Unit | None = None
    top_p: _Unit | None = None
    top_k: Annotated[int, Field(ge=0, le=1_000_000)] | None = None
    tools: Annotated[list[Tool], Field(max_length=MAX_TOOLS)] | None = None
    tool_choice: ToolChoice | None = None
    stream: bool = False
    metadata: Metadata | None = None
    output_config: OutputConfig | None = None
    thinking: _Ignored = None
    cache_control: _Ignored = None
    container: _Ignored | _Short = None
    diagnostics: _Ignored = None
    inference_geo: _Short | None = None
    service_tier: Literal["auto", "standard_only"] | None = None
    speed: Literal["standard", "fast"] | None = None
    user_profile_id: _Short | None = None
    workspace_id: _Short | None = None

    @model_validator(mode="after")
    def _tools_agree(self) -> MessagesRequest:
        names = [tool.name for tool in self.tools or []]
        if len(set(names)) != len(names):
            raise ValueError("tools: each tool needs a distinct name")
        if isinstance(self.tool_choice, ToolChoiceTool) and self.tool_choice.name not in names:
            raise ValueError(f"tool_choice names tool {self.tool_choice.name!r}, which is not among the tools")
        if isinstance(self.tool_choice, ToolChoiceAny | ToolChoiceTool) and not names:
            raise ValueError(f"tool_choice {self.tool_choice.type!r} needs tools")
        return self


def read_messages_request(payload: object) -> MessagesRequest:
    """`payload` (parsed JSON) as a MessagesRequest, or a UsageError whose message names the offending fields,
    for an Anthropic 400 `invalid_request_error`."""
    try:
        return MessagesRequest.model_validate(payload)
    except ValidationError as exc:
        raise UsageError(validation_message(exc)) from None


def validation_message(exc: ValidationError) -> str:
    """The first few problems as `path: message`, the path in the request's own field names."""
    problems = []
    for error in exc.errors(include_url=False, include_input=False)[:3]:
        path = ".".join(str(part) for part in error["loc"] if isinstance(part, int) or _is_field(part))
        message = str(error["msg"]).removeprefix("Value error, ")
        problems.append(f"{path}: {message}" if path else message)
    more = len(exc.errors()) - len(problems)
    return "; ".join(problems) + (f" (and {more} more)" if more > 0 else "")


def _is_field(part: object) -> bool:
    """Pydantic adds the names of union members to an error's path (`str`, `list[...]`, a tag); drop those."""
    return isinstance(part, str) and part.replace("_", "").isalnum() and part not in {"str", "list", "dict"}
