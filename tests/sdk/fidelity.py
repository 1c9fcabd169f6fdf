"""Strict-fidelity check: the official Anthropic Python SDK against the kosmo simulator.

Usage: python tests/sdk/fidelity.py BASE_URL      (or KOSMO_SIM_URL=BASE_URL)

Every client is built with `_strict_response_validation=True`, so a response that does not match
the SDK's own models (a missing field, a wrong literal, a bad timestamp) raises. The script runs
every seed operation and the SDK operations kosmo's manifest adds, stops at the first failure and
exits 1 with the step's name and the error. Start the simulator with a short `--batch-delay`.
"""

import io
import os
import sys
import time
import traceback

import anthropic
from anthropic import Anthropic

BASE = sys.argv[1] if len(sys.argv) > 1 else os.environ.get("KOSMO_SIM_URL", "")
if not BASE:
    sys.exit("usage: fidelity.py BASE_URL (or set KOSMO_SIM_URL)")

MODEL = "claude-sonnet-4-20250514"
api = Anthropic(api_key="sk-ant-api03-fidelity-check", base_url=BASE, max_retries=0,
                _strict_response_validation=True)
admin = Anthropic(api_key="sk-ant-admin01-fidelity-check", base_url=BASE, max_retries=0,
                  _strict_response_validation=True)

STEPS = []


def step(fn):
    STEPS.append(fn)
    return fn


def check(cond, message):
    if not cond:
        raise AssertionError(message)


def user(text):
    return [{"role": "user", "content": text}]


# --- Messages -------------------------------------------------------------------------------

@step
def messages_create():
    m = api.messages.create(model=MODEL, max_tokens=256, messages=user("Summarize prompt caching."),
                            system="Be brief.", metadata={"user_id": "u1"})
    check(m.type == "message" and m.role == "assistant", f"bad message header: {m}")
    check(m.stop_reason == "end_turn", f"stop_reason {m.stop_reason!r}, want end_turn")
    check(m.content and m.content[0].type == "text" and m.content[0].text, "no text block")
    check(m.usage.input_tokens > 0 and m.usage.output_tokens > 0, f"usage {m.usage}")
    again = api.messages.create(model=MODEL, max_tokens=256, messages=user("Summarize prompt caching."),
                                system="Be brief.", metadata={"user_id": "u1"})
    check(again.content[0].text == m.content[0].text, "same input gave different text")
    check(m._request_id and m._request_id.startswith("req_"), f"request id {m._request_id!r}")


@step
def messages_max_tokens_and_stop_sequence():
    m = api.messages.create(model=MODEL, max_tokens=3, messages=user("Tell me a long story"))
    check(m.stop_reason == "max_tokens", f"stop_reason {m.stop_reason!r}, want max_tokens")
    check(m.usage.output_tokens == 3, f"output_tokens {m.usage.output_tokens}, want 3")
    m = api.messages.create(model=MODEL, max_tokens=200, messages=user("alpha beta STOP gamma"),
                            stop_sequences=["STOP"])
    check(m.stop_reason == "stop_sequence" and m.stop_sequence == "STOP",
          f"stop {m.stop_reason!r} {m.stop_sequence!r}")
    check("STOP" not in m.content[0].text, "text contains the stop sequence")


TOOLS = [{
    "name": "get_weather",
    "description": "Weather for a city",
    "input_schema": {"type": "object", "properties": {"city": {"type": "string"},
                     "unit": {"type": "string", "enum": ["celsius", "fahrenheit"]}},
                     "required": ["city"]},
}]


@step
def messages_tool_use():
    m = api.messages.create(model=MODEL, max_tokens=200, messages=user("Weather in Paris?"),
                            tools=TOOLS, tool_choice={"type": "tool", "name": "get_weather"})
    check(m.stop_reason == "tool_use", f"stop_reason {m.stop_reason!r}")
    block = [b for b in m.content if b.type == "tool_use"][0]
    check(block.name == "get_weather" and isinstance(block.input, dict), f"tool block {block}")
    check(isinstance(block.input.get("city"), str), f"input {block.input}")
    check(block.input.get("unit") == "celsius", f"enum not honoured: {block.input}")


@step
def messages_stream_helpers():
    with api.messages.stream(model=MODEL, max_tokens=64, messages=user("Stream please")) as s:
        text = "".join(s.text_stream)
        final = s.get_final_message()
    check(text and final.content[0].text == text, "streamed text != final message text")
    check(final.stop_reason == "end_turn", f"stop_reason {final.stop_reason!r}")
    check(final.usage.output_tokens == len(text.split()), f"usage {final.usage}")
    with api.messages.stream(model=MODEL, max_tokens=200, messages=user("Weather?"), tools=TOOLS,
                             tool_choice={"type": "tool", "name": "get_weather"}) as s:
        final = s.get_final_message()
    tool = [b for b in final.content if b.type == "tool_use"][0]
    check(isinstance(tool.input, dict) and "city" in tool.input, f"streamed tool input {tool.input}")


@step
def messages_thinking():
    kwargs = dict(model=MODEL, max_tokens=2048, messages=user("Think first"),
                  thinking={"type": "enabled", "budget_tokens": 1024})
    m = api.messages.create(**kwargs)
    check(m.content[0].type == "thinking" and m.content[0].signature, f"{m.content[0]}")
    with api.messages.stream(**kwargs) as s:
        final = s.get_final_message()
    check(final.content[0].type == "thinking" and final.content[0].thinking == m.content[0].thinking,
          f"streamed thinking {final.content[0]}")
    check(final.content[1].text == m.content[1].text, "streamed text differs")


@step
def messages_raw_stream_order():
    names = [e.type for e in api.messages.create(model=MODEL, max_tokens=64, stream=True,
                                                   messages=user("order check"))]
    check(names[0] == "message_start", f"first event {names[0]}")
    check(names[-1] == "message_stop" and names[-2] == "message_delta", f"tail {names[-2:]}")
    check("content_block_delta" in names, "no deltas")


@step
def count_tokens():
    small = api.messages.count_tokens(model=MODEL, messages=user("Hello, Claude")).input_tokens
    big = api.messages.count_tokens(model=MODEL, messages=user("Hello, Claude " * 200)).input_tokens
    check(0 < small < big, f"count_tokens does not grow: {small} vs {big}")


# --- Message Batches ------------------------------------------------------------------------

def params(text, **extra):
    return {"model": MODEL, "max_tokens": 64, "messages": user(text), **extra}


def wait_ended(batch_id, timeout=30):
    deadline = time.time() + timeout
    while time.time() < deadline:
        b = api.messages.batches.retrieve(batch_id)
        if b.processing_status == "ended":
            return b
        time.sleep(0.1)
    raise AssertionError(f"batch {batch_id} did not end within {timeout}s")


@step
def batches_lifecycle():
    b = api.messages.batches.create(requests=[
        {"custom_id": "ok-1", "params": params("first")},
        {"custom_id": "ok-2", "params": params("second")},
        # Valid for the batch endpoint, refused by Messages itself: an `errored` row.
        {"custom_id": "bad-1", "params": params("x", temperature=5)},
        # The API checks params asynchronously: these are accepted, then end as `errored` rows.
        {"custom_id": "no-max", "params": {"model": MODEL, "messages": user("x")}},
        {"custom_id": "no-messages", "params": {"model": MODEL, "max_tokens": 16, "messages": []}},
        {"custom_id": "streamed", "params": params("s", stream=True)},
        {"custom_id": "kosmo-expire-1", "params": params("late")},
    ])
    check(b.processing_status == "in_progress", f"new batch is {b.processing_status}")
    check(b.request_counts.processing == 7 and b.request_counts.succeeded == 0, f"{b.request_counts}")
    check(b.results_url is None, "results_url before the end")
    try:
        api.messages.batches.delete(b.id)
        raise AssertionError("deleting an in-progress batch was accepted")
    except anthropic.BadRequestError:
        pass
    ended = wait_ended(b.id)
    rc = ended.request_counts
    check((rc.processing, rc.succeeded, rc.errored, rc.expired) == (0, 2, 4, 1), f"counts {rc}")
    check(ended.results_url and ended.results_url.startswith(BASE), f"results_url {ended.results_url}")
    rows = {r.custom_id: r.result for r in api.messages.batches.results(b.id)}
    check(rows["ok-1"].type == "succeeded" and rows["ok-1"].message.content, f"{rows['ok-1']}")
    check(rows["bad-1"].type == "errored", f"{rows['bad-1']}")
    check(rows["bad-1"].error.error.type == "invalid_request_error", f"{rows['bad-1']}")
    for cid, needle in [("no-max", "max_tokens"), ("no-messages", "messages"), ("streamed", "stream")]:
        r = rows[cid]
        check(r.type == "errored" and r.error.type == "error" and r.error.request_id is None
              and r.error.error.type == "invalid_request_error" and needle in r.error.error.message,
              f"{cid}: {r}")
    check(rows["kosmo-expire-1"].type == "expired", f"{rows['kosmo-expire-1']}")
    listed = [x.id for x in api.messages.batches.list(limit=1)]
    check(b.id in listed, "batch missing from the list walk")
    deleted = api.messages.batches.delete(b.id)
    check(deleted.type == "message_batch_deleted" and deleted.id == b.id, f"{deleted}")
    try:
        api.messages.batches.retrieve(b.id)
        raise AssertionError("deleted batch still retrievable")
    except anthropic.NotFoundError:
        pass


@step
def batches_cancel():
    b = api.messages.batches.create(requests=[{"custom_id": "c-1", "params": params("cancel me")}])
    c = api.messages.batches.cancel(b.id)
    check(c.processing_status == "canceling" and c.cancel_initiated_at is not None, f"{c}")
    ended = wait_ended(b.id)
    check(ended.request_counts.canceled == 1, f"{ended.request_counts}")
    rows = list(api.messages.batches.results(b.id))
    check(rows[0].result.type == "canceled", f"{rows}")


# --- Models ---------------------------------------------------------------------------------

@step
def models_pages_both_ways():
    everything = [m.id for m in api.models.list(limit=1000)]
    forward = [m.id for m in api.models.list(limit=2)]
    check(forward == everything, f"forward walk {forward} != {everything}")
    check(len(everything) >= 5, "too few models")
    last_page = api.models.list(limit=2, after_id=everything[-3])
    backward = [m.id for m in api.models.list(limit=2, before_id=everything[-1])]
    # Pages come newest-cursor-first when walking back; each page keeps list order.
    check(backward[:2] == everything[-3:-1], f"first page walking back {backward[:2]}")
    check(sorted(backward, key=everything.index) == everything[:-1], f"backward walk {backward}")
    check(last_page.has_more is False, "has_more on the last page")
    m = api.models.retrieve(MODEL)
    check(m.id == MODEL and m.type == "model", f"{m}")
    try:
        api.models.list(limit=0)
        raise AssertionError("limit=0 accepted")
    except anthropic.BadRequestError:
        pass
    try:
        api.models.retrieve("claude-nope")
        raise AssertionError("unknown model found")
    except anthropic.NotFoundError:
        pass


# --- Files ----------------------------------------------------------------------------------

@step
def beta_files():
    up = api.beta.files.upload(file=("notes.txt", io.BytesIO(b"hello files"), "text/plain"))
    check(up.filename == "notes.txt" and up.size_bytes == 11 and up.downloadable is False, f"{up}")
    ids = [f.id for f in api.beta.files.list(limit=1)]
    check(up.id in ids and "file_011downloadable" in ids, f"list walk {ids}")
    meta = api.beta.files.retrieve_metadata(up.id)
    check(meta.id == up.id and meta.mime_type == "text/plain", f"{meta}")
    data = api.beta.files.download("file_011downloadable").read()
    check(data.startswith(b"month,"), f"download {data[:20]!r}")
    try:
        api.beta.files.download(up.id)
        raise AssertionError("uploaded file was downloadable")
    except anthropic.BadRequestError:
        pass
    gone = api.beta.files.delete(up.id)
    check(gone.id == up.id, f"{gone}")
    try:
        api.beta.files.retrieve_metadata(up.id)
        raise AssertionError("deleted file still there")
    except anthropic.NotFoundError:
        pass


@step
def ga_files():
    up = api.files.upload(file=("data.csv", io.BytesIO(b"a,b\n1,2\n"), "text/csv"))
    page = api.files.list(limit=1)
    check(len(page.data) == 1, f"{page}")
    ids = [f.id for f in api.files.list(limit=1)]
    check(up.id in ids, f"GA list walk {ids}")
    check(api.files.retrieve_metadata(up.id).filename == "data.csv", "GA metadata")
    api.files.delete(up.id)


# --- Admin API ------------------------------------------------------------------------------

@step
def admin_organization_and_users():
    org = admin.organization.retrieve()
    check(org.type == "organization" and org.name, f"{org}")
    users = list(admin.organization.users.list(limit=2))
    check(len(users) >= 4, f"users {users}")
    dev = [u for u in users if u.role == "user"][0]
    updated = admin.organization.users.update(dev.id, role="developer")
    check(updated.role == "developer", f"{updated}")
    check(admin.organization.users.retrieve(dev.id).role == "developer", "role change not kept")
    devs = [u.id for u in admin.organization.users.list(roles=["developer"])]
    check(dev.id in devs, "roles filter")
    gone = admin.organization.users.remove(users[-1].id)
    check(gone.type == "user_deleted", f"{gone}")
    try:
        admin.organization.users.retrieve(users[-1].id)
        raise AssertionError("removed user still there")
    except anthropic.NotFoundError:
        pass


@step
def admin_workspaces_and_members():
    active = list(admin.organization.workspaces.list())
    every = list(admin.organization.workspaces.list(include_archived=True))
    check(len(every) > len(active), "include_archived shows nothing more")
    ws = admin.organization.workspaces.create(name="Fidelity")
    check(ws.name == "Fidelity" and ws.archived_at is None, f"{ws}")
    ws = admin.organization.workspaces.update(ws.id, name="Fidelity 2")
    check(admin.organization.workspaces.retrieve(ws.id).name == "Fidelity 2", "rename not kept")
    uid = next(iter(admin.organization.users.list())).id
    m = admin.organization.workspaces.members.add(ws.id, user_id=uid, workspace_role="workspace_developer")
    check(m.workspace_id == ws.id and m.user_id == uid, f"{m}")
    members = list(admin.organization.workspaces.members.list(ws.id))
    check([x.user_id for x in members] == [uid], f"{members}")
    m = admin.organization.workspaces.members.update(uid, workspace_id=ws.id, workspace_role="workspace_admin")
    check(admin.organization.workspaces.members.retrieve(uid, workspace_id=ws.id).workspace_role == "workspace_admin", "member role")
    r = admin.organization.workspaces.members.remove(uid, workspace_id=ws.id)
    check(r.type == "workspace_member_deleted", f"{r}")
    archived = admin.organization.workspaces.archive(ws.id)
    check(archived.archived_at is not None, f"{archived}")


@step
def admin_api_keys_and_invites():
    keys = list(admin.organization.api_keys.list(status="active"))
    check(keys and all(k.status == "active" for k in keys), f"{keys}")
    k = admin.organization.api_keys.update(keys[0].id, name="Renamed", status="inactive")
    check(k.name == "Renamed" and k.status == "inactive", f"{k}")
    check(admin.organization.api_keys.retrieve(k.id).status == "inactive", "status not kept")
    inv = admin.organization.invites.create(email="new@example.com", role="developer")
    check(inv.status == "pending" and inv.email == "new@example.com", f"{inv}")
    check(inv.id in [i.id for i in admin.organization.invites.list()], "invite not listed")
    check(admin.organization.invites.retrieve(inv.id).id == inv.id, "invite retrieve")
    d = admin.organization.invites.delete(inv.id)
    check(d.type == "invite_deleted", f"{d}")


# --- The SDK's beta namespace (same paths with `?beta=true` and beta headers) ----------------

@step
def beta_namespace():
    m = api.beta.messages.create(model=MODEL, max_tokens=32, messages=user("beta hello"),
                                 betas=["interleaved-thinking-2025-05-14"])
    check(m.type == "message" and m.content[0].text, f"{m}")
    with api.beta.messages.stream(model=MODEL, max_tokens=200, messages=user("beta stream")) as s:
        check(s.get_final_message().stop_reason == "end_turn", "beta stream")
    n = api.beta.messages.count_tokens(model=MODEL, messages=user("beta count"),
                                       betas=["token-counting-2024-11-01"])
    check(n.input_tokens > 0, f"{n}")
    b = api.beta.messages.batches.create(requests=[{"custom_id": "b-1", "params": params("beta batch")}])
    check(b.id in [x.id for x in api.beta.messages.batches.list()], "beta batch list")
    ended = None
    deadline = time.time() + 30
    while time.time() < deadline:
        ended = api.beta.messages.batches.retrieve(b.id)
        if ended.processing_status == "ended":
            break
        time.sleep(0.1)
    check(ended and ended.processing_status == "ended", f"{ended}")
    rows = list(api.beta.messages.batches.results(b.id))
    check(rows[0].result.type == "succeeded", f"{rows}")
    check(api.beta.messages.batches.delete(b.id).type == "message_batch_deleted", "beta delete")
    ids = [x.id for x in api.beta.models.list(limit=3)]
    check(ids == [x.id for x in api.models.list()], "beta models walk")
    check(api.beta.models.retrieve(MODEL).id == MODEL, "beta model retrieve")


# --- Errors ---------------------------------------------------------------------------------

@step
def error_envelopes():
    bad = Anthropic(api_key="not-a-key", base_url=BASE, max_retries=0, _strict_response_validation=True)
    try:
        bad.models.list()
        raise AssertionError("bad key accepted")
    except anthropic.AuthenticationError as e:
        check(e.body["error"]["message"] == "invalid x-api-key", f"{e.body}")
        check(e.request_id and e.request_id.startswith("req_"), "no request id on error")
    try:
        api.organization.retrieve()
        raise AssertionError("normal key accepted on an admin endpoint")
    except anthropic.PermissionDeniedError:
        pass
    try:
        api.models.list(extra_headers={"anthropic-beta": "no-such-beta-2099-01-01"})
        raise AssertionError("unknown beta accepted")
    except anthropic.BadRequestError as e:
        check("no-such-beta-2099-01-01" in str(e), f"{e}")
    try:
        api.messages.create(model=MODEL, max_tokens=0, messages=user("x"))
        raise AssertionError("max_tokens=0 accepted")
    except anthropic.BadRequestError as e:
        check(e.body["type"] == "error" and e.body["error"]["type"] == "invalid_request_error", f"{e.body}")
    refused = [
        ("budget >= max_tokens", dict(max_tokens=2048, thinking={"type": "enabled", "budget_tokens": 2048})),
        ("budget < 1024", dict(max_tokens=4096, thinking={"type": "enabled", "budget_tokens": 512})),
        ("tool_choice without tools", dict(max_tokens=64, tool_choice={"type": "any"})),
        ("max_tokens above the model's", dict(max_tokens=10_000_000, timeout=30)),
    ]
    for what, kwargs in refused:
        try:
            api.messages.create(model=MODEL, messages=user("x"), **kwargs)
            raise AssertionError(f"{what} accepted")
        except anthropic.BadRequestError as e:
            check(e.body["error"]["type"] == "invalid_request_error", f"{what}: {e.body}")
    try:
        api.messages.batches.create(requests=[{"custom_id": "twice", "params": params("a")},
                                              {"custom_id": "twice", "params": params("b")}])
        raise AssertionError("duplicate custom_id accepted")
    except anthropic.BadRequestError as e:
        check("twice" in str(e), f"{e}")


def main():
    print(f"anthropic {anthropic.__version__} (strict) against {BASE}")
    for fn in STEPS:
        try:
            fn()
        except Exception as e:  # noqa: BLE001 - report any failure with the step name
            print(f"FAIL {fn.__name__}: {type(e).__name__}: {e}", file=sys.stderr)
            traceback.print_exc(limit=3, file=sys.stderr)
            sys.exit(1)
        print(f"ok   {fn.__name__}")
    print(f"all {len(STEPS)} steps passed")


if __name__ == "__main__":
    main()
