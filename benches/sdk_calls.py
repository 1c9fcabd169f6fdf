#!/usr/bin/env python3
"""Sequential calls/sec of the official Anthropic SDK: sdk_calls.py BASE_URL FUNCTION N.
Prints the median and the best of 5 rounds. Used by benches/exec_calls.rs; FUNCTION is create_message or get_model."""
import sys
import time

import anthropic

base_url, function, n = sys.argv[1], sys.argv[2], int(sys.argv[3])
client = anthropic.Anthropic(api_key="sk-ant-api03-bench", base_url=base_url, max_retries=0)


def once():
    if function == "get_model":
        client.models.retrieve("claude-sonnet-4-20250514")
    else:
        client.messages.create(model="claude-sonnet-4-20250514", max_tokens=16, messages=[{"role": "user", "content": "Hi"}])


for _ in range(min(200, n)):
    once()
rates = []
for _ in range(5):
    t = time.perf_counter()
    for _ in range(n // 5):
        once()
    rates.append((n // 5) / (time.perf_counter() - t))
rates.sort()
print(rates[len(rates) // 2], rates[-1])
