#!/usr/bin/env python3
"""Wire oracle: run the official Anthropic Python SDK against a local capture server.

Usage: sdk_requests.py OPERATIONS_JSON  >  captured.json

For every operation in OPERATIONS_JSON (see operations.json next to this file) the SDK call
named by "sdk" is made with "sdk_args" / "sdk_kwargs" against a server on 127.0.0.1 that
records each request and answers with a plausible body. The last request of each operation
(the SDK's `batches.results` first fetches the batch, then its `results_url`) is printed as
{name, method, path, query, body, headers} with only the headers the oracle compares.
The Rust test tests/it/exec/oracle.rs runs the same operations through kosmo and compares.
"""

import json
import pathlib
import sys

sys.path.insert(0, str(pathlib.Path(__file__).resolve().parent))

from capture import CaptureServer, sdk_target  # noqa: E402

import anthropic  # noqa: E402

COMPARED_HEADERS = ("authorization", "x-api-key", "anthropic-version", "anthropic-beta")
API_KEY = "sk-ant-api03-oracle-key"
ADMIN_KEY = "sk-ant-admin01-oracle-key"

SSE = (
    'event: message_start\ndata: {"type":"message_start","message":{"id":"msg_1","type":"message","role":"assistant",'
    '"content":[],"model":"m","stop_reason":null,"stop_sequence":null,"usage":{"input_tokens":1,"output_tokens":1}}}\n\n'
    'event: message_delta\ndata: {"type":"message_delta","delta":{"stop_reason":"end_turn","stop_sequence":null},'
    '"usage":{"output_tokens":2}}\n\n'
    'event: message_stop\ndata: {"type":"message_stop"}\n\n'
)


def respond(method, path, body, base):
    if path == "/v1/messages" and body and json.loads(body).get("stream"):
        return SSE.encode(), "text/event-stream"
    if path.endswith("/results"):
        return b"", "application/x-jsonl"
    if path.endswith("/content"):
        return b"\x00\x01", "application/octet-stream"
    if path.startswith("/v1/messages/batches/") and method == "GET":
        batch = {"id": "msgbatch_x", "type": "message_batch", "results_url": f"{base}{path}/results"}
        return json.dumps(batch).encode(), "application/json"
    page = {"id": "x", "data": [], "has_more": False, "first_id": None, "last_id": None, "next_page": None, "input_tokens": 1}
    return json.dumps(page).encode(), "application/json"


def main():
    ops = json.load(open(sys.argv[1]))
    server = CaptureServer(COMPARED_HEADERS, respond, "request-id")

    def call(op):
        key = ADMIN_KEY if op.get("key") == "admin" else API_KEY
        client = anthropic.Anthropic(api_key=key, base_url=server.base_url, max_retries=0)
        target, args, kwargs = sdk_target(client, op)
        result = target(*args, **kwargs)
        if op.get("stream"):
            for _ in result:
                pass
        elif hasattr(result, "__iter__") and op["sdk"].endswith("results"):
            list(result)

    server.run_operations(ops, call)


if __name__ == "__main__":
    main()
