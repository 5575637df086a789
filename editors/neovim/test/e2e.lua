-- End-to-end test of the CodeForge plugin in a real headless Neovim (0.7 to 0.11) against the real
-- `codeforge lsp` binary and a scripted OpenAI-compatible model server. Run by run.sh, which sets:
--   CF_BIN (server binary), CF_WS (a copy of editors/testkit/fixture), CF_CACHE (cache dir),
--   CF_PORT (stub model server), CF_LOG (stub request log), CF_PY (python with pytest),
--   CF_TEST_KEY (an API key the stub must receive), XDG_CONFIG_HOME (trust store).
-- Every step asserts; the first failed wait ends the run. Exit status: 0 all passed, 1 failures,
-- 2 a Lua error, 3 the watchdog fired.

local results, failed = {}, 0
local function log(msg)
  io.stdout:write(msg .. "\n")
  io.stdout:flush()
end
local function check(cond, what, detail)
  if cond then
    log("  ok   " .. what)
  else
    failed = failed + 1
    log("  FAIL " .. what .. (detail and (": " .. tostring(detail)) or ""))
  end
  table.insert(results, { cond and true or false, what })
  return cond
end
local function finish()
  log(("neovim %s: %d checks, %d failed"):format(tostring(vim.version().major) .. "." .. vim.version().minor .. "." .. vim.version().patch, #results, failed))
  vim.cmd(failed == 0 and "qall!" or "cquit 1")
end

vim.defer_fn(function()
  log("  FAIL watchdog: the test did not finish in 150 s")
  vim.cmd("cquit 3")
end, 150000)

local env = function(k)
  local v = os.getenv(k)
  assert(v and v ~= "", "missing environment variable " .. k)
  return v
end

local function read(path)
  local f = io.open(path, "r")
  if not f then
    return nil
  end
  local s = f:read("*a")
  f:close()
  return s
end

local function wait(ms, cond, what)
  local ok = vim.wait(ms, cond, 50)
  if not ok then
    check(false, what, "timed out after " .. ms .. " ms")
  end
  return ok
end

local function requests()
  local out = {}
  for line in (read(env("CF_LOG")) or ""):gmatch("[^\n]+") do
    table.insert(out, vim.fn.json_decode(line))
  end
  return out
end

local function buf_text()
  return table.concat(vim.api.nvim_buf_get_lines(0, 0, -1, false), "\n")
end

local function run()
  local ws, cache, port = env("CF_WS"), env("CF_CACHE"), env("CF_PORT")
  local cf = require("codeforge")
  local url = "http://127.0.0.1:" .. port .. "/v1"

  -- 1. setup + attach ------------------------------------------------------------------------
  check(vim.fn.exists(":CodeForgeGenerate") == 2 and vim.fn.exists(":CodeForgeReindex") == 2
    and vim.fn.exists(":CodeForgeContext") == 2 and vim.fn.exists(":CodeForgeTrust") == 2
    and vim.fn.exists(":CodeForgeUntrust") == 2, "plugin/codeforge.lua defines the user commands")
  local started = cf.setup({
    bin = env("CF_BIN"),
    cache_dir = cache,
    settings = {
      embeddings = { backend = "none" },
      generation = { backend = "openai", url = url, model = "stub-model", api_key_env = "CF_TEST_KEY" },
      verify = { python = env("CF_PY"), rounds = 0 },
    },
  })
  check(started == true, "setup() finds the binary and registers the server")
  vim.cmd("edit " .. ws .. "/shapes.py")
  if not wait(20000, function() return cf.client(0) ~= nil end, "the server attaches to a Python buffer") then
    return
  end
  local client = cf.client(0)
  check(true, "the server attaches to a Python buffer (client " .. client.id .. ")")
  check(client.config.root_dir == ws, "workspace root found from pyproject.toml", client.config.root_dir)

  -- 2. indexing progress reaches the statusline -----------------------------------------------
  if wait(60000, function() return cf.state.indexed end, "indexing finishes ($/progress end seen)") then
    check(cf.status():find("^CodeForge ✓ indexed") ~= nil, "status() says indexed", cf.status())
  end

  -- 3. completion at the cursor -----------------------------------------------------------------
  vim.api.nvim_buf_set_lines(0, 11, 12, false, { "    " })
  vim.api.nvim_win_set_cursor(0, { 12, 4 })
  -- AI items: labelDetails.description "CodeForge: rest of line|block|function".
  local function is_ai(i)
    return type(i.labelDetails) == "table" and type(i.labelDetails.description) == "string"
      and i.labelDetails.description:find("^CodeForge: rest of") ~= nil
  end
  local items = {}
  for _ = 1, 20 do
    local params = {
      textDocument = { uri = vim.uri_from_bufnr(0) },
      position = { line = 11, character = 4 },
      context = { triggerKind = 1 },
    }
    local resp = vim.lsp.buf_request_sync(0, "textDocument/completion", params, 10000)
    local res
    for _, r in pairs(resp or {}) do
      res = r.result
    end
    items = vim.tbl_filter(is_ai, res and (res.items or res) or {})
    if #items > 0 then
      break
    end
    vim.wait(300)
  end
  check(#items > 0, "textDocument/completion returns CodeForge items")
  if #items > 0 then
    local item = items[1]
    local text = (item.textEdit and item.textEdit.newText) or item.insertText or item.label
    check(text:find('return f"{width} x {height}: {area}"', 1, true) ~= nil, "the completion item holds the model's code", text)
    check(item.labelDetails.description == "CodeForge: rest of line", "the first item is the line-level one, labelled", item.labelDetails.description)
    check((item.detail or ""):find("unverified", 1, true) ~= nil, "the item is marked unverified", item.detail)
  end
  vim.cmd("silent! undo")

  -- 4. trust the workspace, so verification runs the fixture's pytest test --------------------
  local trusted
  cf.trust(true, function(err, result)
    trusted = { err = err, result = result }
  end)
  if wait(10000, function() return trusted ~= nil end, ":CodeForgeTrust answers") then
    check(trusted.err == nil and trusted.result and trusted.result.trusted == true, "codeforge.trustWorkspace succeeds", vim.inspect(trusted))
    local store = read(env("XDG_CONFIG_HOME") .. "/codeforge/trust.json") or ""
    check(store:find(ws, 1, true) ~= nil, "the trust store remembers the workspace", store)
  end

  -- 5. the docstring code action, resolved, applied and saved -----------------------------------
  vim.api.nvim_win_set_cursor(0, { 5, 4 })
  local offered = {}
  local orig_select = vim.ui.select
  vim.ui.select = function(choices, opts, on_choice)
    for i, c in ipairs(choices) do
      local title = (opts.format_item and opts.format_item(c)) or c.title or (c[2] and c[2].title) or (c.action and c.action.title)
      table.insert(offered, title)
      if title:find("Generate `rectangle_area` from its docstring (CodeForge)", 1, true) then
        return on_choice(c, i)
      end
    end
    return on_choice(nil)
  end
  vim.lsp.buf.code_action()
  local applied = wait(60000, function()
    return buf_text():find("return width * height", 1, true) ~= nil
  end, "the code action's edit reaches the buffer")
  vim.ui.select = orig_select
  check(#offered > 0 and offered[1]:find("Generate `rectangle_area`", 1, true) ~= nil, "the code action is offered", vim.inspect(offered))
  if applied then
    check(true, "the code action's edit reaches the buffer")
    vim.cmd("write")
    local disk = read(ws .. "/shapes.py") or ""
    check(disk:find("    return width * height\n", 1, true) ~= nil, "the generated body is on disk after :write", disk)
    check(disk:find("    ...\n", 1, true) == nil, "the stub body is gone", disk)
  end

  -- 6. the verification result is shown ------------------------------------------------------------
  -- The verdict (codeforge/verification) and the end of the generation's $/progress come on
  -- separate channels: wait for both.
  if wait(60000, function()
    return cf.state.last_verification_status ~= nil and cf.status():find("✓ 1/1", 1, true) ~= nil
  end, "a typed verdict arrives (codeforge/verification) and the generation ends") then
    check(cf.state.last_verification_status == "passed", "the typed status is passed: " .. tostring(cf.state.last_verification_status), cf.state.last_verification_status)
    check(cf.state.last_verification:find("^✓ 1/1") ~= nil, "verification ran the workspace's test and passed: " .. cf.state.last_verification, cf.state.last_verification)
    check(cf.status():find("✓ 1/1", 1, true) ~= nil, "status() shows the verification result", cf.status())
  end

  -- 7. context: what would be retrieved ------------------------------------------------------------
  vim.api.nvim_win_set_cursor(0, { 11, 4 })
  local ctx
  cf.context(function(err, result, lines)
    ctx = { err = err, result = result, lines = lines }
  end)
  if wait(15000, function() return ctx ~= nil end, ":CodeForgeContext answers") then
    check(ctx.err == nil and ctx.lines and ctx.lines[1]:find("describe", 1, true) ~= nil, "the context names the target", vim.inspect(ctx.lines))
    check(ctx.result and #ctx.result.items > 0, "the context lists what would be retrieved", vim.inspect(ctx.result))
    check(vim.api.nvim_buf_get_name(0):find("codeforge://context", 1, true) ~= nil, "the context opens in a scratch buffer", vim.api.nvim_buf_get_name(0))
    vim.cmd("close")
  end

  -- 8. re-index command ---------------------------------------------------------------------------------
  local re
  cf.reindex(function(err, result)
    re = { err = err, result = result }
  end)
  if wait(10000, function() return re ~= nil end, ":CodeForgeReindex answers") then
    check(re.err == nil and re.result and re.result.workspaces == 1, "codeforge.reindex re-indexes the workspace", vim.inspect(re))
  end

  -- 9. settings change + untrust: regeneration is unverified and uses the new model --------------------
  cf.update_settings({
    embeddings = { backend = "none" },
    generation = { backend = "openai", url = url, model = "stub-model-2", api_key_env = "CF_TEST_KEY" },
    verify = { python = env("CF_PY"), rounds = 0 },
  })
  local untrusted
  cf.trust(false, function(err, result)
    untrusted = { err = err, result = result }
  end)
  wait(10000, function() return untrusted ~= nil end, ":CodeForgeUntrust answers")
  check(untrusted and untrusted.err == nil and untrusted.result and untrusted.result.trusted == false, "codeforge.untrustWorkspace succeeds", vim.inspect(untrusted))
  vim.api.nvim_win_set_cursor(0, { 5, 4 })
  local gen
  cf.generate({ force = true }, function(err, result)
    gen = { err = err, result = result }
  end)
  if wait(60000, function() return gen ~= nil end, ":CodeForgeGenerate! answers") then
    local v = gen.result and gen.result.verification
    check(gen.err == nil and gen.result.status == "generated", "codeforge/generate regenerates the implemented function", vim.inspect(gen))
    check(type(v) == "table" and v.status == "unverified", "after :CodeForgeUntrust the result is unverified", vim.inspect(v))
    check(cf.state.last_verification_status == "unverified", "the typed status follows: " .. tostring(cf.state.last_verification_status), cf.state.last_verification_status)
    check(cf.state.last_verification and cf.state.last_verification:find("^⚠ unverified") ~= nil, "status() shows the unverified result: " .. cf.status(), cf.status())
  end

  -- 10. what the model server saw ---------------------------------------------------------------------------
  local reqs = requests()
  check(#reqs >= 3, "the stub model served completion and generation requests", #reqs)
  local all_keyed = #reqs > 0
  for _, r in ipairs(reqs) do
    if r.authorization ~= "Bearer " .. env("CF_TEST_KEY") then
      all_keyed = false
    end
  end
  check(all_keyed, "every request carries the key named by generation.api_key_env", reqs[1] and reqs[1].authorization)
  check(reqs[1] and reqs[1].model == "stub-model", "initializationOptions reach the server (model)", reqs[1] and reqs[1].model)
  check(reqs[#reqs] and reqs[#reqs].model == "stub-model-2", "didChangeConfiguration reaches the server (model)", reqs[#reqs] and reqs[#reqs].model)

  -- 11. :checkhealth codeforge --------------------------------------------------------------------------------
  vim.cmd("checkhealth codeforge")
  local health = buf_text()
  check(health:find("binary found: " .. env("CF_BIN"), 1, true) ~= nil, "checkhealth finds the binary", health)
  check(health:find("version: codeforge", 1, true) ~= nil, "checkhealth shows `codeforge --version`", health)
  check(health:find("backend reachable: " .. url, 1, true) ~= nil, "checkhealth reaches the HTTP backend", health)
  check(health:find("API key variable CF_TEST_KEY is set", 1, true) ~= nil, "checkhealth sees the API key variable", health)
  -- The sandbox: asked from the running server, and what `codeforge doctor --json` says here.
  local hm = require("codeforge.health")
  local doctor_out = vim.fn.system({ env("CF_BIN"), "doctor", "--json" })
  local expected = hm.parse_sandbox(doctor_out)
  check(expected ~= nil, "`codeforge doctor --json` prints the sandbox object", doctor_out)
  check(health:find("CodeForge: sandbox for test runs", 1, true) ~= nil, "checkhealth has a sandbox section", health)
  check(health:find("from the running server (client " .. client.id .. ", codeforge/health)", 1, true) ~= nil,
    "checkhealth asks the running server (codeforge/health)", health)
  if expected then
    local severity = ({ full = "OK", reduced = "WARNING", none = "ERROR" })[expected.level]
    local line
    for l in health:gmatch("[^\n]+") do
      if l:find(expected.summary, 1, true) then
        line = l
      end
    end
    check(line ~= nil and line:find(severity, 1, true) ~= nil,
      ("checkhealth reports this machine's %s isolation as %s"):format(expected.level, severity), line or health)
    check(health:find(expected.self_test == "passed" and "sandbox self-test passed" or ("sandbox self-test failed: " .. expected.self_test), 1, true) ~= nil,
      "checkhealth reports the sandbox self-test (" .. expected.self_test .. ")", health)
  end
  vim.cmd("silent! tabclose")
  -- Without a running server: `codeforge doctor --json` (stderr after the JSON is ignored).
  local ids = cf.state.client_ids
  cf.state.client_ids = {}
  vim.cmd("enew")
  local sb, source = hm.sandbox_health(env("CF_BIN"))
  vim.cmd("bwipeout!")
  cf.state.client_ids = ids
  check(sb ~= nil and source == "`" .. env("CF_BIN") .. " doctor --json`", "without a server, checkhealth runs `codeforge doctor --json`", source)
  check(expected == nil or (sb and sb.level == expected.level), "doctor and the server agree on the level", sb and sb.level)
  local parsed = hm.parse_sandbox(doctor_out .. "\ncodeforge: the sandbox self-test failed\n")
  check(parsed ~= nil and expected ~= nil and parsed.level == expected.level, "the doctor's JSON is read with a stderr line after it")
  check(hm.parse_sandbox('{"sandbox": "process group, no network, workspace read-only"}') == nil, "the old free-text sandbox is not taken for a level")
  -- Each level's severity, through a recording reporter (this machine has only one level).
  local function report(sandbox)
    local calls = {}
    local rec = function(kind)
      return function(msg, advice)
        table.insert(calls, { kind = kind, msg = msg, advice = table.concat(advice or {}, " ") })
      end
    end
    hm.report_sandbox({ start = rec("start"), ok = rec("ok"), info = rec("info"), warn = rec("warn"), error = rec("error") }, sandbox, "test")
    return calls
  end
  local function has(calls, kind, text)
    for _, c in ipairs(calls) do
      if c.kind == kind and (c.msg .. " " .. c.advice):find(text, 1, true) then
        return true
      end
    end
    return false
  end
  local full = report({ level = "full", missing = {}, summary = "full isolation: user namespace", self_test = "passed" })
  check(has(full, "ok", "full isolation: user namespace") and has(full, "ok", "self-test passed") and not has(full, "warn", "")
    and not has(full, "error", ""), "full isolation and a passing self-test are OK", vim.inspect(full))
  local reduced = report({ level = "reduced", missing = { "user namespaces unavailable: EPERM" },
    summary = "reduced isolation (user namespaces unavailable: EPERM): Landlock", self_test = "passed" })
  check(has(reduced, "warn", "reduced isolation (user namespaces") and has(reduced, "warn", 'verify.sandbox = "reduced"')
    and has(reduced, "info", "missing: user namespaces unavailable: EPERM") and not has(reduced, "error", ""),
    "reduced isolation is a warning naming what is missing and verify.sandbox", vim.inspect(reduced))
  local none = report({ level = "none", missing = { "Landlock unavailable", "seccomp unavailable" },
    summary = "no isolation (Landlock unavailable; seccomp unavailable)", self_test = "the run wrote into the hidden workspace" })
  check(has(none, "error", "no isolation (Landlock") and has(none, "error", 'verify.sandbox = "none"')
    and has(none, "error", "self-test failed: the run wrote into the hidden workspace") and has(none, "info", "missing: seccomp unavailable"),
    "no isolation and a failed self-test are errors", vim.inspect(none))
  -- The embedded backend: the model file in the cache dir, present or not.
  cf.config.settings = { generation = { backend = "embedded" } }
  cf.config.cache_dir = cache
  vim.cmd("checkhealth codeforge")
  health = buf_text()
  check(health:find("embedded model missing: " .. cache .. "/models/qwen2.5-coder-0.5b-instruct/qwen2.5-coder-0.5b-instruct.gguf", 1, true) ~= nil,
    "checkhealth reports a missing embedded model with its path", health)
  vim.cmd("silent! tabclose")
  vim.fn.mkdir(cache .. "/models/qwen2.5-coder-0.5b-instruct", "p")
  local f = io.open(cache .. "/models/qwen2.5-coder-0.5b-instruct/qwen2.5-coder-0.5b-instruct.gguf", "w")
  f:write("GGUF")
  f:close()
  vim.cmd("checkhealth codeforge")
  health = buf_text()
  check(health:find("embedded model present: ", 1, true) ~= nil, "checkhealth finds the embedded model", health)
  vim.cmd("silent! tabclose")
  cf.config.settings = { generation = { backend = "openai", url = "http://127.0.0.1:9/v1" } }
  vim.cmd("checkhealth codeforge")
  health = buf_text()
  check(health:find("backend not reachable: http://127.0.0.1:9/v1", 1, true) ~= nil, "checkhealth reports an unreachable backend", health)
end

local ok, err = xpcall(run, debug.traceback)
if not ok then
  log("  FAIL Lua error: " .. tostring(err))
  vim.cmd("cquit 2")
end
finish()
