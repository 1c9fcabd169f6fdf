"""Mock mode against the official Anthropic Python SDK: the kinds of request the SDK's own generated
tests (`tests/api_resources`, run in full by tests/sdk/api_resources.sh) send, each answered with
a response the SDK parses in strict mode.

Usage: python tests/sdk/mock_mode.py BASE_URL
       (BASE_URL: `kosmo simulator:serve anthropic --mock --key api_key=my-anthropic-api-key
        --key admin_key=my-anthropic-api-key`)

Covers: placeholder ids that exist nowhere (get / delete / cancel / update of batches, files,
models, users, invites, workspaces, members, API keys), `before_id` together with `after_id`,
enum values the SDK types as plain strings (`roles=["string"]`), unknown beta names, uploads of raw
bytes without a file name, `inference_data_privacy` on workspaces, and an async upload with a
wrong key, which must be a 401 (not a connection error). Prints "N steps passed"; exits 1 on
the first failure.
"""

import asyncio
import sys
import traceback

import anthropic
from anthropic import Anthropic, AsyncAnthropic

BASE = sys.argv[1]
KEY = "my-anthropic-api-key"
client = Anthropic(api_key=KEY, base_url=BASE, max_retries=0, _strict_response_validation=True)
STEPS = []


def step(fn):
    STEPS.append(fn)
    return fn


def check(cond, message):
    if not cond:
        raise AssertionError(message)


@step
def unknown_ids_are_answered():
    b = client.messages.batches.retrieve("message_batch_id")
    check(b.id, "a batch")
    client.messages.batches.cancel("message_batch_id")
    client.messages.batches.delete("message_batch_id")
    m = client.models.retrieve("model_id")
    check(m.id, "a model")
    f = client.beta.files.retrieve_metadata("file_id")
    check(f.id, "a file")
    client.beta.files.delete("file_id")
    client.organization.users.retrieve("user_id")
    client.organization.invites.retrieve("invite_id")
    client.organization.invites.delete("invite_id")
    client.organization.workspaces.retrieve("workspace_id")
    client.organization.workspaces.archive("workspace_id")
    client.organization.workspaces.members.retrieve("user_id", workspace_id="workspace_id")
    client.organization.workspaces.members.remove("user_id", workspace_id="workspace_id")
    client.organization.api_keys.retrieve("api_key_id")


@step
def cross_parameter_combinations_are_answered():
    page = client.models.list(before_id="before_id", after_id="after_id", limit=1)
    check(isinstance(page.data, list), "a page")
    page = client.messages.batches.list(before_id="before_id", after_id="after_id", limit=1)
    check(isinstance(page.data, list), "a page")


@step
def sdk_types_win_over_the_manifest_enums():
    client.organization.users.list(roles=["string"], limit=1)
    client.organization.invites.list(roles=["string"], limit=1)


@step
def unknown_beta_names_are_accepted():
    client.beta.models.list(betas=["string"])


@step
def raw_bytes_upload_without_a_file_name():
    f = client.files.upload(file=b"Example data")
    check(f.id.startswith("file_"), f"an uploaded file: {f.id}")


@step
def workspaces_take_inference_data_privacy():
    privacy = {
        "human_review": {"type": "disabled"},
        "safeguards_storage": {"type": "internal"},
        "transcripts_storage": {"external_storage_id": "estrg_1", "type": "external"},
    }
    w = client.beta.organization.workspaces.create(name="x", inference_data_privacy=privacy)
    check(w.id, "a workspace")
    client.beta.organization.workspaces.update("workspace_id", inference_data_privacy=privacy)


@step
def schema_validation_still_applies():
    try:
        client.messages.create(model="m", max_tokens=0, messages=[{"role": "user", "content": "x"}])
    except anthropic.BadRequestError as e:
        check("max_tokens" in str(e), str(e))
    else:
        raise AssertionError("max_tokens: 0 was accepted")


@step
def auth_still_applies():
    bad = Anthropic(api_key="wrong", base_url=BASE, max_retries=0)
    try:
        bad.models.list()
    except anthropic.AuthenticationError:
        pass
    else:
        raise AssertionError("a wrong key was accepted")


@step
def async_upload_with_a_wrong_key_is_a_401():
    async def run():
        bad = AsyncAnthropic(api_key="wrong", base_url=BASE, max_retries=0)
        try:
            await bad.files.upload(file=("big.bin", b"x" * (4 << 20), "application/octet-stream"))
        except anthropic.AuthenticationError:
            return
        except anthropic.APIConnectionError as e:
            raise AssertionError(f"connection error instead of the 401: {e!r}")
        raise AssertionError("a wrong key was accepted")

    asyncio.run(run())


passed = 0
for fn in STEPS:
    try:
        fn()
        passed += 1
    except Exception:
        print(f"FAILED: {fn.__name__}")
        traceback.print_exc()
        sys.exit(1)
print(f"{passed} steps passed")
