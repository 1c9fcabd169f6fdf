#!/usr/bin/env python3
"""Response oracle: every `simulator.response` of manifests/openai.yaml parses under the official
SDK in strict mode.

Usage: check_responses.py MANIFEST_AS_JSON OPERATIONS_JSON  (prints {function: "ok" | error})

MANIFEST_AS_JSON is the manifest converted to JSON (the Rust test does that). For every operation
of OPERATIONS_JSON whose function has a JSON `simulator.response`, a server on 127.0.0.1 answers
the SDK call with that response and `openai.OpenAI(_strict_response_validation=True)` must parse
it into its typed model.
"""

import json
import sys
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import openai

answer = {"body": b"{}", "ctype": "application/json"}


class Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"

    def log_message(self, *args):
        pass

    def handle_any(self):
        length = int(self.headers.get("content-length") or 0)
        if length:
            self.rfile.read(length)
        out = answer["body"]
        self.send_response(200)
        self.send_header("content-type", answer["ctype"])
        self.send_header("content-length", str(len(out)))
        self.end_headers()
        self.wfile.write(out)

    do_GET = do_POST = do_PUT = do_PATCH = do_DELETE = handle_any


def main():
    manifest = json.load(open(sys.argv[1]))
    ops = json.load(open(sys.argv[2]))
    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    client = openai.OpenAI(
        api_key="sk-proj-check", base_url=f"http://127.0.0.1:{server.server_address[1]}/v1",
        max_retries=0, _strict_response_validation=True,
    )
    out = {}
    for op in ops:
        fn = manifest["functions"][op["function"]]
        response = (fn.get("simulator") or {}).get("response")
        if op.get("stream") or not isinstance(response, (dict, list)) or op["function"] in out:
            continue
        answer["body"] = json.dumps(response).encode()
        target = client
        for attr in op["sdk"].split("."):
            target = getattr(target, attr)
        kwargs = dict(op.get("sdk_kwargs", {}))
        if "sdk_file" in op:
            f = op["sdk_file"]
            kwargs["file"] = (f["name"], f["content"].encode(), f["mime_type"])
        try:
            result = target(*op.get("sdk_args", []), **kwargs)
            if hasattr(result, "data"):
                list(result)
            out[op["function"]] = "ok"
        except Exception as e:
            out[op["function"]] = f"{type(e).__name__}: {e}"
    server.shutdown()
    json.dump(out, sys.stdout, indent=1)


if __name__ == "__main__":
    main()
