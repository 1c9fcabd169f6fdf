-- The tour of docs/adding-an-integration.md: create, get, list (three ways), an error.
local todoist = app.integrations.todoist

-- create_task is a write: it runs under --force (or with `--write allow` for the account)
local milk = todoist.create_task({content = "Buy milk", priority = 4, labels = {"errands"}})
todoist.create_task({content = "Call the bank"})
print("created:", milk.content, milk.priority, milk.labels[1], milk.checked)

-- get_task finds it by the id the create answered
local again = todoist.get_task({task_id = milk.id})
print("got:", again.id == milk.id, again.content, last_response().status)

-- one page, then every page (fetch_all), then item by item (items() asks page by page)
local page = todoist.list_tasks({limit = 2})
print("first page:", #page.results, "tasks, more:", page.next_cursor ~= nil)
local all = todoist.list_tasks({limit = 2, fetch_all = true})
print("fetch_all:", #all.results, "tasks")
for task in items(todoist.list_tasks, {limit = 2}) do
  print("item:", task.content)
end

-- an unknown id: a structured error in Todoist's envelope
local ok, err = pcall(todoist.get_task, {task_id = "no-such-task"})
print("error:", ok, err.code, err.status, err.body.error)
