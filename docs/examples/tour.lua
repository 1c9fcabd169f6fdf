-- A tour of kosmo's Anthropic integration. Runs offline against the built-in simulator:
--   cargo run --locked -- integrations:lua --offline --force docs/examples/tour.lua
-- and, unchanged, against the real API once ANTHROPIC_API_KEY is set (drop --offline).
local anthropic = app.integrations.anthropic
local model = "claude-sonnet-4-20250514"

print("== Models")
local models = anthropic.list_models({ limit = 3 })
for _, m in ipairs(models.data) do
  print(m.id .. " - " .. m.display_name)
end

print("\n== A message")
local msg = anthropic.create_message({
  model = model,
  max_tokens = 256,
  messages = { { role = "user", content = "Summarize prompt caching in one paragraph." } },
})
print(msg.content[1].text)
print(("usage: %d input tokens, %d output tokens, stop_reason=%s"):format(
  msg.usage.input_tokens, msg.usage.output_tokens, msg.stop_reason))

print("\n== A streamed message")
local deltas = 0
local streamed = anthropic.create_message({
  model = model,
  max_tokens = 128,
  stream = true,
  messages = { { role = "user", content = "Write one sentence about CI." } },
  on_event = function(ev)
    if ev.type == "content_block_delta" and ev.delta.type == "text_delta" then
      deltas = deltas + 1
    end
  end,
})
print(("%d text deltas assembled into: %s"):format(deltas, streamed.content[1].text))

print("\n== Token counting")
local count = anthropic.count_message_tokens({
  payload = { model = model, messages = { { role = "user", content = "Hello, Claude" } } },
})
print("input_tokens: " .. count.input_tokens)

print("\n== A Message Batch: submit, wait, read the results")
local batch = anthropic.create_message_batch({
  payload = {
    requests = {
      { custom_id = "ci-1", params = { model = model, max_tokens = 64,
        messages = { { role = "user", content = "One sentence about CI." } } } },
      { custom_id = "ci-2", params = { model = model, max_tokens = 64,
        messages = { { role = "user", content = "One sentence about CD." } } } },
    },
  },
})
print(batch.id .. " " .. batch.processing_status)
local ended = anthropic.wait_for_message_batch({ id = batch.id })
print(("%s: %d succeeded, %d errored"):format(ended.processing_status,
  ended.request_counts.succeeded, ended.request_counts.errored))
for row in rows(anthropic.get_message_batch_results, { id = batch.id }) do
  print(row.custom_id .. " -> " .. row.result.type)
end

return { message = msg.id, batch = batch.id }
