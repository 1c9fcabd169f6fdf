"""Capture what the official `stripe` Python SDK puts on the wire for a few calls.

Prints one JSON list: [{name, method, path, query, headers, body}] (headers lower-cased,
only the ones the QA test compares). Run with a python that has `stripe` installed.
"""
import json
import sys
import threading
from http.server import BaseHTTPRequestHandler, HTTPServer

import stripe

CAPTURED = []
KEEP = ("authorization", "content-type", "idempotency-key", "stripe-version")


class Handler(BaseHTTPRequestHandler):
    def _handle(self):
        n = int(self.headers.get("content-length") or 0)
        body = self.rfile.read(n).decode() if n else ""
        path, _, query = self.path.partition("?")
        CAPTURED.append({
            "method": self.command,
            "path": path,
            "query": query,
            "headers": {k.lower(): v for k, v in self.headers.items() if k.lower() in KEEP},
            "body": body,
        })
        if path.startswith("/v1/customers") and self.command == "GET" and path.count("/") == 2:
            out = {"object": "list", "url": "/v1/customers", "has_more": False, "data": []}
        else:
            out = {"id": "cus_1", "object": "customer"}
        data = json.dumps(out).encode()
        self.send_response(200)
        self.send_header("content-type", "application/json")
        self.send_header("content-length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    do_GET = do_POST = do_DELETE = _handle

    def log_message(self, *a):
        pass


def main():
    srv = HTTPServer(("127.0.0.1", 0), Handler)
    threading.Thread(target=srv.serve_forever, daemon=True).start()
    client = stripe.StripeClient(
        "sk_test_oracle123",
        base_addresses={"api": f"http://127.0.0.1:{srv.server_port}"},
        max_network_retries=0,
    )
    names = []
    client.v1.customers.create(params={
        "email": "a@example.com",
        "name": "Ann Lee",
        "metadata": {"order_id": "6735", "tier": "gold"},
        "preferred_locales": ["en", "fr"],
        "address": {"city": "Paris", "line1": "1 Rue X"},
    }, options={"idempotency_key": "idem-1"})
    names.append("create_customer")
    client.v1.invoice_items.create(params={
        "customer": "cus_1",
        "amount": 1200,
        "currency": "eur",
        "metadata": {"k": "v"},
    })
    names.append("create_invoice_item")
    client.v1.checkout.sessions.create(params={
        "mode": "payment",
        "success_url": "https://example.com/ok?x=1",
        "line_items": [
            {"price": "price_A", "quantity": 2},
            {"price_data": {"currency": "eur", "unit_amount": 500, "product_data": {"name": "Tee"}}, "quantity": 1},
        ],
        "metadata": {"cart": "c 1"},
    })
    names.append("create_checkout_session")
    client.v1.customers.list(params={"limit": 3, "starting_after": "cus_3", "email": "a@example.com"})
    names.append("list_customers")
    client.v1.customers.retrieve("cus_9")
    names.append("get_customer")
    client.v1.customers.update("cus_9", params={
        "metadata": {"old": "", "n": "1"},
        "tax_exempt": "none",
        "invoice_settings": {"custom_fields": [{"name": "PO", "value": "7"}], "footer": "Danke schön"},
        "expand": ["default_source", "invoice_settings.default_payment_method"],
        "balance": -500,
    })
    names.append("update_customer")
    client.v1.customers.list(params={"created": {"gte": 1700000000, "lt": 1800000000}, "expand": ["data.default_source"]})
    names.append("list_customers_filtered")
    client.v1.customers.delete("cus_9")
    names.append("delete_customer")
    client.v1.subscriptions.update("sub_1", params={"cancel_at_period_end": True, "proration_behavior": "none"})
    names.append("update_subscription")
    for name, req in zip(names, CAPTURED):
        req["name"] = name
    json.dump(CAPTURED, sys.stdout, indent=1)
    srv.shutdown()


if __name__ == "__main__":
    main()
