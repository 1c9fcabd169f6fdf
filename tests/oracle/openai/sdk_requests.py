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

import email.parser
import email.policy
import json
import sys
import threading
import urllib.parse
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import openai

COMPARED_HEADERS = ("authorization", "openai-organization", "openai-project", "accept")
API_KEY = "sk-proj-oracle-key"

CHUNK = {"id": "chatcmpl-1", "object": "chat.completion.chunk", "created": 1, "model": "m", "choices": []}
SSE = (
    "data: " + json.dumps({**CHUNK, "choices": [{"index": 0, "delta": {"role": "assistant", "content": "Hi"}, "finish_reason": None}]}) + "\n\n"
    "data: " + json.dumps({**CHUNK, "choices": [{"index": 0, "delta": {}, "finish_reason": "stop"}]}) + "\n\n"
    "data: [DONE]\n\n"
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
        if path.endswith("/chat/completions") and body and json.loads(body).get("stream"):
            out, ctype = SSE.encode(), "text/event-stream"
        elif path.endswith("/content"):
            out, ctype = b"\x00\x01", "application/octet-stream"
        else:
            out = json.dumps(
                {"id": "x", "object": "list", "data": [], "has_more": False, "first_id": None, "last_id": None}
            ).encode()
        self.send_response(200)
        self.send_header("content-type", ctype)
        self.send_header("content-length", str(len(out)))
        self.send_header("x-request-id", "req_oracle")
        self.end_headers()
        self.wfile.write(out)

    do_GET = do_POST = do_PUT = do_PATCH = do_DELETE = handle_any


def run(op, base_url):
    client = openai.OpenAI(api_key=API_KEY, base_url=base_url, max_retries=0, **op.get("client", {}))
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


def main():
    ops = json.load(open(sys.argv[1]))
    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    # The SDK's default base URL is https://api.openai.com/v1 and its paths (`/chat/completions`)
    # are appended to it: the capture server gets the same `/v1/...` paths.
    base_url = f"http://127.0.0.1:{server.server_address[1]}/v1"
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
