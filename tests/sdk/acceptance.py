"""QA acceptance: the official Anthropic Python SDK, strict mode, against `kosmo simulator:serve`.

Usage: python tests/sdk/acceptance.py BASE_URL   (start the server with a short --batch-delay)

Cases that tests/sdk/fidelity.py does not cover: forced and `any` tool choice with a nested input
schema, streaming with tools, thinking over a stream, several stop sequences while streaming,
system blocks with cache_control, max_tokens=1 (plain and streamed), batch cancel flows, models
walked backwards with before_id, binary uploads and download rules, admin state edge cases, and the
SDK's exception class for every status the simulator can be told to fail with (x-kosmo-fault).
Every client uses `_strict_response_validation=True`. Prints one line per case; exits 1 if any
case failed.
"""

import io
import sys
import time
import traceback

import anthropic
from anthropic import Anthropic

BASE = sys.argv[1]
MODEL = "claude-sonnet-4-20250514"
api = Anthropic(api_key="sk-ant-api03-qa-acceptance", base_url=BASE, max_retries=0,
                _strict_response_validation=True)
admin = Anthropic(api_key="sk-ant-admin01-qa-acceptance", base_url=BASE, max_retries=0,
                  _strict_response_validation=True)
FAILED = []


def case(fn):
    try:
        fn()
        print(f"ok   {fn.__name__}")
    except Exception as e:  # noqa: BLE001 - report every failure with its case name
        FAILED.append(fn.__name__)
        print(f"FAIL {fn.__name__}: {type(e).__name__}: {e}")
        traceback.print_exc(limit=2)
    return fn


def check(cond, message):
    if not cond:
        raise AssertionError(message)


def user(text):
    return [{"role": "user", "content": text}]


def params(text, **extra):
    return {"model": MODEL, "max_tokens": 16, "messages": user(text), **extra}


def raises(cls, fn):
    try:
        fn()
    except cls as e:
        return e
    raise AssertionError(f"expected {cls.__name__}")


def wait_ended(batch_id, timeout=120):  # a hang guard, far from the 300 ms batch delay
    deadline = time.time() + timeout
    while time.time() < deadline:
        b = api.messages.batches.retrieve(batch_id)
        if b.processing_status == "ended":
            return b
        time.sleep(0.05)
    raise AssertionError(f"batch {batch_id} did not end")


CALC = {
    "name": "calc",
    "description": "calculator",
    "input_schema": {
        "type": "object",
        "properties": {
            "a": {"type": "integer", "minimum": 3},
            "b": {"type": "number", "default": 2.5},
            "op": {"type": "string", "enum": ["add", "sub"]},
            "nested": {"type": "object", "properties": {"x": {"type": "boolean"}}, "required": ["x"]},
            "arr": {"type": "array", "items": {"type": "string"}},
        },
        "required": ["a", "op", "nested", "arr"],
    },
}
OTHER = {"name": "other", "description": "o", "input_schema": {"type": "object", "properties": {}}}
TOOLS = [CALC, OTHER]


@case
def forced_tool_input_follows_the_schema():
    m = api.messages.create(model=MODEL, max_tokens=100, messages=user("compute"), tools=TOOLS,
                            tool_choice={"type": "tool", "name": "calc"})
    check(m.stop_reason == "tool_use", m.stop_reason)
    block = [b for b in m.content if b.type == "tool_use"][0]
    check(block.name == "calc" and block.id.startswith("toolu_"), block)
    inp = block.input
    check(inp["a"] == 3 and inp["op"] == "add" and inp["nested"]["x"] in (True, False), inp)
    check(isinstance(inp["arr"], list), inp)


@case
def tool_choice_any_and_none():
    m = api.messages.create(model=MODEL, max_tokens=100, messages=user("compute"), tools=TOOLS,
                            tool_choice={"type": "any"})
    check(m.stop_reason == "tool_use" and any(b.type == "tool_use" for b in m.content), m)
    m = api.messages.create(model=MODEL, max_tokens=100, messages=user("use calc please"),
                            tools=TOOLS, tool_choice={"type": "none"})
    check([b.type for b in m.content] == ["text"] and m.stop_reason == "end_turn", m)


@case
def tool_choice_naming_an_unknown_tool_is_400():
    raises(anthropic.BadRequestError, lambda: api.messages.create(
        model=MODEL, max_tokens=10, messages=user("x"), tools=TOOLS,
        tool_choice={"type": "tool", "name": "nope"}))


@case
def streaming_a_forced_tool_call():
    with api.messages.stream(model=MODEL, max_tokens=100, messages=user("compute"), tools=TOOLS,
                             tool_choice={"type": "tool", "name": "calc"}) as s:
        kinds = {e.type for e in s}
        final = s.get_final_message()
    check(final.stop_reason == "tool_use", final.stop_reason)
    check(final.content[-1].type == "tool_use" and final.content[-1].input["a"] == 3, final)
    check({"message_start", "content_block_start", "content_block_delta", "message_stop"} <= kinds,
          kinds)
    plain = api.messages.create(model=MODEL, max_tokens=100, messages=user("compute"), tools=TOOLS,
                                tool_choice={"type": "tool", "name": "calc"})
    check(plain.content[-1].input == final.content[-1].input, "streamed tool input differs")


@case
def streaming_with_thinking_and_tools():
    with api.messages.stream(model=MODEL, max_tokens=3000, messages=user("think then answer"),
                             tools=TOOLS, thinking={"type": "enabled", "budget_tokens": 1024}) as s:
        final = s.get_final_message()
    check(final.content[0].type == "thinking" and final.content[0].signature, final.content[0])


@case
def thinking_budget_below_minimum_is_400():
    raises(anthropic.BadRequestError, lambda: api.messages.create(
        model=MODEL, max_tokens=4000, messages=user("x"),
        thinking={"type": "enabled", "budget_tokens": 10}))


@case
def several_stop_sequences_while_streaming():
    with api.messages.stream(model=MODEL, max_tokens=200, messages=user("alpha beta HALT gamma END"),
                             stop_sequences=["END", "HALT"]) as s:
        final = s.get_final_message()
    check(final.stop_reason == "stop_sequence" and final.stop_sequence == "HALT",
          (final.stop_reason, final.stop_sequence))
    check("HALT" not in final.content[0].text, final.content[0].text)


@case
def system_blocks_and_metadata():
    m = api.messages.create(model=MODEL, max_tokens=50, messages=user("x"), metadata={"user_id": "u-1"},
                            system=[{"type": "text", "text": "Be brief",
                                     "cache_control": {"type": "ephemeral"}}])
    check(m.usage.input_tokens > 0 and m.usage.cache_read_input_tokens == 0, m.usage)


@case
def max_tokens_one_plain_and_streamed():
    m = api.messages.create(model=MODEL, max_tokens=1, messages=user("hello there friend"))
    check(m.stop_reason == "max_tokens" and m.usage.output_tokens == 1, m)
    with api.messages.stream(model=MODEL, max_tokens=1, messages=user("hello there friend")) as s:
        f = s.get_final_message()
    check(f.stop_reason == "max_tokens" and f.content[0].text == m.content[0].text, f)


@case
def multi_turn_with_blocks_and_tool_results():
    msgs = [
        {"role": "user", "content": [{"type": "text", "text": "look"},
                                     {"type": "image", "source": {"type": "base64",
                                                                  "media_type": "image/png",
                                                                  "data": "iVBORw0KGgo="}}]},
        {"role": "assistant", "content": [{"type": "tool_use", "id": "toolu_1", "name": "calc",
                                           "input": {"a": 1}}]},
        {"role": "user", "content": [{"type": "tool_result", "tool_use_id": "toolu_1",
                                      "content": "3"}]},
    ]
    m = api.messages.create(model=MODEL, max_tokens=50, messages=msgs, tools=TOOLS)
    check(m.content[0].type == "text", m)


@case
def empty_messages_and_bad_role_are_400():
    raises(anthropic.BadRequestError,
           lambda: api.messages.create(model=MODEL, max_tokens=10, messages=[]))
    raises(anthropic.BadRequestError, lambda: api.messages.create(
        model=MODEL, max_tokens=10, messages=[{"role": "robot", "content": "x"}]))


@case
def count_tokens_grows_with_tools_and_system():
    a = api.messages.count_tokens(model=MODEL, messages=user("x")).input_tokens
    b = api.messages.count_tokens(model=MODEL, messages=user("x"), tools=TOOLS,
                                  system="a system prompt").input_tokens
    check(0 < a < b, (a, b))


@case
def batch_level_errors_are_400():
    raises(anthropic.BadRequestError, lambda: api.messages.batches.create(requests=[]))
    raises(anthropic.BadRequestError, lambda: api.messages.batches.create(
        requests=[{"custom_id": "a", "params": params("a")}, {"custom_id": "a", "params": params("b")}]))
    raises(anthropic.BadRequestError, lambda: api.messages.batches.create(
        requests=[{"custom_id": "has space!", "params": params("a")}]))
    raises(anthropic.NotFoundError, lambda: api.messages.batches.retrieve("msgbatch_nope"))


@case
def batch_cancel_flow():
    b = api.messages.batches.create(requests=[{"custom_id": "x", "params": params("a")},
                                              {"custom_id": "y", "params": params("b")}])
    c = api.messages.batches.cancel(b.id)
    check(c.processing_status == "canceling" and c.cancel_initiated_at is not None, c)
    raises(anthropic.BadRequestError, lambda: api.messages.batches.delete(b.id))
    ended = wait_ended(b.id)
    rc = ended.request_counts
    check((rc.processing, rc.canceled) == (0, 2) and ended.ended_at is not None, rc)
    raises(anthropic.BadRequestError, lambda: api.messages.batches.cancel(b.id))
    rows = [r.result.type for r in api.messages.batches.results(b.id)]
    check(rows == ["canceled", "canceled"], rows)
    check(api.messages.batches.delete(b.id).type == "message_batch_deleted", "delete")


@case
def seeded_batches():
    rows = [(r.custom_id, r.result.type)
            for r in api.messages.batches.results("msgbatch_01HkcTjaV5uDC8jWR4ZsDV8d")]
    check(sorted(rows) == [("question-1", "succeeded"), ("question-2", "succeeded"),
                           ("question-3", "errored")], rows)


@case
def batches_walk_both_ways():
    api.messages.batches.create(requests=[{"custom_id": "w", "params": params("walk")}])
    every = [x.id for x in api.messages.batches.list(limit=100)]
    check([x.id for x in api.messages.batches.list(limit=1)] == every, "forward walk")
    back = api.messages.batches.list(limit=1, before_id=every[-1])
    check([x.id for x in back.data] == every[-2:-1], back)


@case
def models_before_id_pages():
    every = [m.id for m in api.models.list(limit=1000)]
    page = api.models.list(limit=3, before_id=every[5])
    check([m.id for m in page.data] == every[2:5] and page.has_more, page)
    check(page.first_id == every[2] and page.last_id == every[4], page)
    first = api.models.list(limit=3, before_id=every[1])
    check([m.id for m in first.data] == every[0:1] and first.has_more is False, first)
    end = api.models.list(limit=3, after_id=every[-1])
    check(end.data == [] and end.has_more is False, end)
    raises(anthropic.BadRequestError,
           lambda: api.models.list(limit=3, before_id=every[5], after_id=every[1]))
    raises(anthropic.BadRequestError, lambda: api.models.list(limit=1001))
    check(api.models.retrieve("claude-sonnet-4-0").id == MODEL, "alias")


@case
def binary_upload_and_download_rules():
    data = bytes(range(256)) * 40
    f = api.beta.files.upload(file=("blob.bin", io.BytesIO(data), "application/octet-stream"))
    check(f.size_bytes == len(data) and f.downloadable is False, f)
    raises(anthropic.BadRequestError, lambda: api.beta.files.download(f.id))
    png = api.beta.files.upload(file=("img.png", io.BytesIO(b"\x89PNG\r\n\x1a\n" + bytes(50))))
    check(png.mime_type == "image/png", png)
    empty = api.beta.files.upload(file=("empty.txt", io.BytesIO(b""), "text/plain"))
    check(empty.size_bytes == 0, empty)
    named = api.beta.files.upload(file=("ünïcødé name.txt", io.BytesIO(b"x"), "text/plain"))
    check(named.filename == "ünïcødé name.txt", named)
    r = api.beta.files.with_raw_response.download("file_011downloadable")
    check(r.headers.get("content-type", "").startswith("text/csv"), r.headers)
    raises(anthropic.NotFoundError, lambda: api.beta.files.retrieve_metadata("file_nope"))
    raises(anthropic.NotFoundError, lambda: api.beta.files.download("file_nope"))
    ids = [x.id for x in api.files.list(limit=2)]
    check(f.id in ids and "file_011downloadable" in ids, ids)


@case
def admin_edge_cases():
    raises(anthropic.BadRequestError, lambda: admin.organization.users.update(
        "user_01Rv3nZcA8sTqWb6KLm2yJxP", role="admin"))
    raises(anthropic.BadRequestError, lambda: admin.organization.invites.create(
        email="x@example.com", role="admin"))
    found = [u.id for u in admin.organization.users.list(email="user@emaildomain.com")]
    check(found == ["user_01WCz1FkmYMm4gnmykNKUu3Q"], found)
    ws = "wrkspc_01JwQvzr7rXLA5AGx3HKfFUJ"
    m = admin.organization.workspaces.members.add(ws, user_id="user_01Rv3nZcA8sTqWb6KLm2yJxP",
                                                   workspace_role="workspace_user")
    check(m.type == "workspace_member", m)
    raises(anthropic.BadRequestError, lambda: admin.organization.workspaces.members.add(
        ws, user_id="user_01Rv3nZcA8sTqWb6KLm2yJxP", workspace_role="workspace_user"))
    raises(anthropic.NotFoundError, lambda: admin.organization.workspaces.members.add(
        ws, user_id="user_nope", workspace_role="workspace_user"))
    raises(anthropic.NotFoundError,
           lambda: admin.organization.api_keys.update("apikey_nope", name="x"))
    keys = [k.id for k in admin.organization.api_keys.list(workspace_id=ws)]
    check(keys == ["apikey_01Rj2N8SVvo6BePZj99NhmiT"], keys)
    raises(anthropic.PermissionDeniedError, lambda: admin.models.list())


EXPECTED = {
    400: anthropic.BadRequestError, 401: anthropic.AuthenticationError,
    403: anthropic.PermissionDeniedError, 404: anthropic.NotFoundError,
    409: anthropic.ConflictError, 413: anthropic.APIStatusError,
    422: anthropic.UnprocessableEntityError, 429: anthropic.RateLimitError,
    500: anthropic.InternalServerError, 503: anthropic.InternalServerError,
    504: anthropic.InternalServerError, 529: anthropic.InternalServerError,
}
TYPES = {400: "invalid_request_error", 401: "authentication_error", 403: "permission_error",
         404: "not_found_error", 409: "conflict_error", 413: "request_too_large",
         429: "rate_limit_error", 500: "api_error", 504: "timeout_error", 529: "overloaded_error"}


@case
def every_fault_status_raises_the_sdk_class():
    for status, cls in EXPECTED.items():
        try:
            api.models.list(extra_headers={"x-kosmo-fault": str(status)})
            raise AssertionError(f"{status}: no error")
        except anthropic.APIStatusError as e:
            check(isinstance(e, cls) and e.status_code == status, f"{status}: {type(e).__name__}")
            check(e.request_id and e.request_id.startswith("req_"), f"{status}: request id")
            if status in TYPES:
                check(e.body["error"]["type"] == TYPES[status], f"{status}: {e.body}")
    e = raises(anthropic.RateLimitError,
               lambda: api.models.list(extra_headers={"x-kosmo-fault": "429"}))
    check(e.response.headers.get("retry-after") == "1", e.response.headers)
    check(type(raises(anthropic.APIStatusError, lambda: api.models.list(
        extra_headers={"x-kosmo-fault": "529"}))).__name__ == "OverloadedError", "529 class")


@case
def transport_faults_raise_connection_errors():
    raises(anthropic.APIConnectionError,
           lambda: api.models.list(extra_headers={"x-kosmo-fault": "reset"}))
    e = raises(anthropic.InternalServerError,
               lambda: api.models.list(extra_headers={"x-kosmo-fault": "html"}))
    check(e.status_code == 502, e.status_code)
    raises(anthropic.APIStatusError, lambda: list(api.messages.create(
        model=MODEL, max_tokens=20, messages=user("x"), stream=True,
        extra_headers={"x-kosmo-fault": "error-event:after=2"})))


@case
def a_fault_header_is_resent_on_sdk_retries():
    client = Anthropic(api_key="sk-ant-api03-qa", base_url=BASE, max_retries=1,
                       _strict_response_validation=True)
    raises(anthropic.InternalServerError,
           lambda: client.models.list(extra_headers={"x-kosmo-fault": "529"}))


if __name__ == "__main__":
    print(f"anthropic {anthropic.__version__} (strict) against {BASE}")
    if FAILED:
        print(f"{len(FAILED)} failed: {', '.join(FAILED)}")
        sys.exit(1)
    print("all acceptance cases passed")
