#!/usr/bin/env python3
"""Wire oracle: run the official OpenAI Python SDK against a local capture server.

Usage: sdk_requests.py OPERATIONS_JSON  >  captured.json

For every operation in OPERATIONS_JSON (operations.json next to this file) the SDK call named by
"sdk" is made with "sdk_args" / "sdk_kwargs" against a server on 127.0.0.1 that records each
request and answers with a plausible body (an SSE stream ending in `data: [DONE]` for
`stream: true`). The last request of each operation is printed as
{name, method, path, query, body, headers} with only the headers the oracle compares.
The Rust test tests/it/exec/oracle_openai.rs runs the same operations through kosmo and compares.
"""

import json
import pathlib
import sys

sys.path.insert(0, str(pathlib.Path(__file__).resolve().parent.parent))

from capture import CaptureServer, sdk_target  # noqa: E402

import openai  # noqa: E402

COMPARED_HEADERS = ("authorization", "openai-organization", "openai-project", "accept")
API_KEY = "sk-proj-oracle-key"

CHUNK = {"id": "chatcmpl-1", "object": "chat.completion.chunk", "created": 1, "model": "m", "choices": []}
SSE = (
    "data: " + json.dumps({**CHUNK, "choices": [{"index": 0, "delta": {"role": "assistant", "content": "Hi"}, "finish_reason": None}]}) + "\n\n"
    "data: " + json.dumps({**CHUNK, "choices": [{"index": 0, "delta": {}, "finish_reason": "stop"}]}) + "\n\n"
    "data: [DONE]\n\n"
)



def respond(method, path, body, base):
    if path.endswith("/chat/completions") and body and json.loads(body).get("stream"):
        return SSE.encode(), "text/event-stream"
    if path.endswith("/content"):
        return b"\x00\x01", "application/octet-stream"
    page = {"id": "x", "object": "list", "data": [], "has_more": False, "first_id": None, "last_id": None}
    return json.dumps(page).encode(), "application/json"


def main():
    ops = json.load(open(sys.argv[1]))
    server = CaptureServer(COMPARED_HEADERS, respond, "x-request-id")
    # The SDK's default base URL is https://api.openai.com/v1 and its paths (`/chat/completions`)
    # are appended to it: the capture server gets the same `/v1/...` paths.
    base_url = server.base_url + "/v1"

    def call(op):
        client = openai.OpenAI(api_key=API_KEY, base_url=base_url, max_retries=0, **op.get("client", {}))
        target, args, kwargs = sdk_target(client, op)
        result = target(*args, **kwargs)
        if op.get("stream"):
            for _ in result:
                pass

    server.run_operations(ops, call)


if __name__ == "__main__":
    main()
