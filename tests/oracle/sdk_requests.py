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

import email.parser
import email.policy
import json
import sys
import threading
import urllib.parse
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import anthropic

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

captured = []


def multipart_summary(content_type, body):
    """[{name, filename, content_type, content}] of a multipart body, in order."""
    msg = email.parser.BytesParser(policy=email.policy.HTTP).parsebytes(
        b"Content-Type: " + content_type.encode() + b"\r\n\r\n" + body
    )
    parts = []
    for part in msg.iter_parts():
        parts.append(
            {
                "name": part.get_param("name", header="content-disposition"),
                "filename": part.get_filename(),
                "content_type": part.get_content_type() if part.get("content-type") else None,
                "content": part.get_payload(decode=True).decode("utf-8", "replace"),
            }
        )
    return parts


def normalize_body(content_type, body):
    if not body:
        return None
    if content_type and content_type.startswith("multipart/form-data"):
        return {"multipart": multipart_summary(content_type, body)}
    return json.loads(body)


class Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"

    def log_message(self, *args):
        pass

    def handle_any(self):
        length = int(self.headers.get("content-length") or 0)
        body = self.rfile.read(length) if length else b""
        target = urllib.parse.urlsplit(self.path)
        headers = {k.lower(): v for k, v in self.headers.items()}
        captured.append(
            {
                "method": self.command,
                "path": target.path,
                "query": urllib.parse.parse_qsl(target.query, keep_blank_values=True),
                "body": normalize_body(headers.get("content-type"), body),
                "headers": {h: headers.get(h) for h in COMPARED_HEADERS},
            }
        )
        path = target.path
        ctype = "application/json"
        if path == "/v1/messages" and body and json.loads(body).get("stream"):
            out, ctype = SSE.encode(), "text/event-stream"
        elif path.endswith("/results"):
            out, ctype = b"", "application/x-jsonl"
        elif path.endswith("/content"):
            out, ctype = b"\x00\x01", "application/octet-stream"
        elif path.startswith("/v1/messages/batches/") and self.command == "GET":
            base = f"http://127.0.0.1:{self.server.server_address[1]}"
            out = json.dumps({"id": "msgbatch_x", "type": "message_batch", "results_url": f"{base}{path}/results"}).encode()
        else:
            out = json.dumps(
                {"id": "x", "data": [], "has_more": False, "first_id": None, "last_id": None, "next_page": None, "input_tokens": 1}
            ).encode()
        self.send_response(200)
        self.send_header("content-type", ctype)
        self.send_header("content-length", str(len(out)))
        self.send_header("request-id", "req_oracle")
        self.end_headers()
        self.wfile.write(out)

    do_GET = do_POST = do_PUT = do_PATCH = do_DELETE = handle_any


def run(op, base_url):
    key = ADMIN_KEY if op.get("key") == "admin" else API_KEY
    client = anthropic.Anthropic(api_key=key, base_url=base_url, max_retries=0)
    target = client
    for attr in op["sdk"].split("."):
        target = getattr(target, attr)
    args = list(op.get("sdk_args", []))
    kwargs = dict(op.get("sdk_kwargs", {}))
    if "sdk_file" in op:
        f = op["sdk_file"]
        kwargs["file"] = (f["name"], f["content"].encode(), f["mime_type"])
    result = target(*args, **kwargs)
    if op.get("stream"):
        for _ in result:
            pass
    elif hasattr(result, "__iter__") and op["sdk"].endswith("results"):
        list(result)


def main():
    ops = json.load(open(sys.argv[1]))
    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    base_url = f"http://127.0.0.1:{server.server_address[1]}"
    out = []
    for op in ops:
        captured.clear()
        error = None
        try:
            run(op, base_url)
        except Exception as e:  # the request was still captured; the body may not parse
            error = f"{type(e).__name__}: {e}"
        if not captured:
            out.append({"name": op["name"], "error": error or "no request captured"})
            continue
        req = dict(captured[-1])
        req["name"] = op["name"]
        out.append(req)
    server.shutdown()
    json.dump(out, sys.stdout, indent=1)


if __name__ == "__main__":
    main()
