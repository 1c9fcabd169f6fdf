#!/usr/bin/env python3
"""Stream oracle: what the official openai SDK assembles from a streamed chat completion.

Usage: assemble_streams.py STREAM.sse...  >  assembled.json

Each file is a `text/event-stream` body of `chat.completion.chunk` events ended by `data: [DONE]`
(tests/oracle/openai/streams/). Its chunks are fed to the SDK's own accumulator,
`openai.lib.streaming.chat.ChatCompletionStreamState` (what `client.chat.completions.stream()`
uses), and its final snapshot (the completion before any `parse()` of structured output) is printed as JSON, keyed by file name.
tests/it/exec/oracle_openai.rs serves the same bytes to kosmo and compares its assembled result.
"""

import json
import os
import sys

from openai.lib.streaming.chat import ChatCompletionStreamState
from openai.types.chat import ChatCompletionChunk


def assemble(text):
    state = ChatCompletionStreamState()
    for block in text.split("\n\n"):
        data = "\n".join(line[5:].lstrip() for line in block.splitlines() if line.startswith("data:"))
        if not data:
            continue
        if data == "[DONE]":
            break
        state.handle_chunk(ChatCompletionChunk.model_validate(json.loads(data)))
    return state.current_completion_snapshot.model_dump(mode="json")


def main():
    out = {}
    for path in sys.argv[1:]:
        with open(path) as f:
            out[os.path.basename(path)] = assemble(f.read())
    json.dump(out, sys.stdout, indent=1)


if __name__ == "__main__":
    main()
