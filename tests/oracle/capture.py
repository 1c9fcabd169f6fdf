"""The capture harness the Python wire oracles share.

A threaded HTTP server on 127.0.0.1 records every request (method, path, query, the compared
headers, and the body: JSON decoded, multipart summarised part by part) and answers with what a
`respond(method, path, body, base_url)` function returns. `run_operations` drives one SDK call
per operation and prints the last captured request of each, the shape the Rust oracle tests read:
{name, method, path, query, body, headers} or {name, error}.
"""

import email.parser
import email.policy
import json
import sys
import threading
import urllib.parse
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer


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


class CaptureServer:
    """Records requests; `respond(method, path, body, base) -> (bytes, content_type)`.

    By default each request is recorded normalized: {method, path, query (pairs), body (decoded),
    headers (only `compared_headers`)}. With `raw=True` it is recorded as sent: {method, path,
    raw_query, body (bytes), headers (all, lower-cased)}, for harnesses that compare more
    (tests/sdk/wire_diff.py). `take()` returns and clears what was recorded.
    """

    def __init__(self, compared_headers, respond, request_id_header, raw=False):
        self.captured = []
        self.lock = threading.Lock()
        outer = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, *args):
                pass

            def handle_any(self):
                length = int(self.headers.get("content-length") or 0)
                body = self.rfile.read(length) if length else b""
                target = urllib.parse.urlsplit(self.path)
                headers = {k.lower(): v for k, v in self.headers.items()}
                if raw:
                    raw_path, _, raw_query = self.path.partition("?")
                    req = {
                        "method": self.command,
                        "path": raw_path,
                        "raw_query": raw_query,
                        "body": body,
                        "headers": headers,
                    }
                else:
                    req = {
                        "method": self.command,
                        "path": target.path,
                        "query": urllib.parse.parse_qsl(target.query, keep_blank_values=True),
                        "body": normalize_body(headers.get("content-type"), body),
                        "headers": {h: headers.get(h) for h in compared_headers},
                    }
                with outer.lock:
                    outer.captured.append(req)
                base = f"http://127.0.0.1:{self.server.server_address[1]}"
                out, ctype = respond(self.command, self.path.partition("?")[0] if raw else target.path, body, base)
                self.send_response(200)
                self.send_header("content-type", ctype)
                self.send_header("content-length", str(len(out)))
                self.send_header(request_id_header, "req_oracle")
                self.end_headers()
                self.wfile.write(out)

            do_GET = do_POST = do_PUT = do_PATCH = do_DELETE = handle_any

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        threading.Thread(target=self.server.serve_forever, daemon=True).start()
        self.base_url = f"http://127.0.0.1:{self.server.server_address[1]}"

    def take(self):
        """What was recorded since the last `take`, in order; clears it."""
        with self.lock:
            out = list(self.captured)
            self.captured.clear()
        return out

    def shutdown(self):
        self.server.shutdown()

    def run_operations(self, ops, call):
        """`call(op)` makes one SDK call; prints the last request of each operation as JSON."""
        out = []
        for op in ops:
            self.captured.clear()
            error = None
            try:
                call(op)
            except Exception as e:  # the request was still captured; the body may not parse
                error = f"{type(e).__name__}: {e}"
            if not self.captured:
                out.append({"name": op["name"], "error": error or "no request captured"})
                continue
            req = dict(self.captured[-1])
            req["name"] = op["name"]
            out.append(req)
        self.server.shutdown()
        json.dump(out, sys.stdout, indent=1)


def sdk_target(client, op):
    """The SDK method an operation names (`messages.create`), and its args and kwargs."""
    target = client
    for attr in op["sdk"].split("."):
        target = getattr(target, attr)
    args = list(op.get("sdk_args", []))
    kwargs = dict(op.get("sdk_kwargs", {}))
    if "sdk_file" in op:
        f = op["sdk_file"]
        kwargs["file"] = (f["name"], f["content"].encode(), f["mime_type"])
    return target, args, kwargs
