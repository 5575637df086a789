-- The one Neovim flow whose model output is real: the docstring code action with the embedded
-- model (Qwen2.5-Coder-0.5B GGUF, the default backend: no generation.backend is sent), applied and
-- written, in a real headless Neovim against the real `codeforge lsp`. Run by run-embedded.sh,
-- which sets CF_BIN, CF_WS (a copy of editors/testkit/fixture), CF_CACHE (a cache dir whose
-- models/ links to the installed model), CF_PY (python with pytest), XDG_CONFIG_HOME.
-- It checks that a body replaced the stub and that a verification label was shown; not that the
-- model got the function right. Exit status: 0 passed, 1 failures, 2 a Lua error, 3 the watchdog.

local results, failed = {}, 0
local t0 = vim.loop.hrtime()
local function log(msg)
  io.stdout:write(("[%5.1fs] %s\n"):format((vim.loop.hrtime() - t0) / 1e9, msg))
  io.stdout:flush()
end
local function check(cond, what, detail)
  if cond then
    log("  ok   " .. what)
  else
    failed = failed + 1
    log("  FAIL " .. what .. (detail and (": " .. tostring(detail)) or ""))
  end
  table.insert(results, cond and true or false)
  return cond
end
local function finish()
  local v = vim.version()
  io.stdout:write(("neovim %d.%d.%d embedded: %d checks, %d failed, %.0f s\n"):format(v.major, v.minor, v.patch, #results, failed, (vim.loop.hrtime() - t0) / 1e9))
  io.stdout:flush()
  vim.cmd(failed == 0 and "qall!" or "cquit 1")
end

-- The whole flow (attach, index, one CPU generation, verification) gets 300 s.
local FLOW_MS = 300000
vim.defer_fn(function()
  log("  FAIL watchdog: the embedded flow did not finish in " .. (FLOW_MS / 1000 + 10) .. " s")
  vim.cmd("cquit 3")
end, FLOW_MS + 10000)

local function env(k)
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

local function remaining()
  return math.max(1000, FLOW_MS - math.floor((vim.loop.hrtime() - t0) / 1e6))
end

local function wait(ms, cond, what)
  local ok = vim.wait(math.min(ms, remaining()), cond, 100)
  if not ok then
    check(false, what, "timed out after " .. math.min(ms, remaining()) .. " ms")
  end
  return ok
end

local STUBS = { ["..."] = true, ["pass"] = true, ["raise NotImplementedError"] = true, ["raise NotImplementedError()"] = true }

-- The code lines of rectangle_area's body (docstring, blank lines and comments left out).
local function body_of(text)
  local lines, in_fn, code = vim.split(text, "\n", { plain = true }), false, {}
  local i = 1
  while i <= #lines do
    local l = lines[i]
    if not in_fn then
      if l:find("^def rectangle_area%(") then
        in_fn = true
        -- the signature may span lines: skip to the one ending with ":"
        while i <= #lines and not lines[i]:find(":%s*$") do
          i = i + 1
        end
        -- the docstring, one line or several
        local j = i + 1
        while j <= #lines and lines[j]:find("^%s*$") do
          j = j + 1
        end
        local first = lines[j] or ""
        local q = first:match('^%s+(""")') or first:match("^%s+(''')")
        if q then
          local rest = first:gsub("^%s+" .. q, "", 1)
          if not rest:find(q, 1, true) then
            j = j + 1
            while j <= #lines and not lines[j]:find(q, 1, true) do
              j = j + 1
            end
          end
          i = j
        end
      end
    else
      if l:find("^%S") then
        break
      end
      local s = vim.trim(l)
      if s ~= "" and not s:find("^#") then
        table.insert(code, s)
      end
    end
    i = i + 1
  end
  return code, in_fn
end

local function is_stub(code)
  if #code == 0 then
    return true
  end
  for _, s in ipairs(code) do
    if not STUBS[s] then
      return false
    end
  end
  return true
end

local function run()
  local ws, cache = env("CF_WS"), env("CF_CACHE")
  local cf = require("codeforge")
  -- Record what the user is shown.
  local notified, gen_error = {}, nil
  local orig_notify = vim.notify
  vim.notify = function(msg, level, opts)
    table.insert(notified, tostring(msg))
    if level == vim.log.levels.ERROR then
      gen_error = tostring(msg)
    end
    log("  (notify) " .. tostring(msg))
    return orig_notify(msg, level, opts)
  end

  local started = cf.setup({
    bin = env("CF_BIN"),
    cache_dir = cache,
    settings = {
      -- No generation.backend: the default, the embedded model. Kept short for a CPU: no plan
      -- step, 160 tokens, and no retrieved snippets in the prompt (context_hits = 0): with them the
      -- 0.5B model (greedy, the same answer every run) rewrites a neighbour instead, which the
      -- server refuses ("no body for `rectangle_area` that parses").
      generation = { plan = "off", max_tokens = 160, context_hits = 0 },
      embeddings = { backend = "none" },
      -- The fixture's test runs on the answer; a failing one is still applied (✗), since this
      -- flow is about the editor path, not about the 0.5B model being right.
      verify = { trust = "always", python = env("CF_PY"), rounds = 0, show_unverified = true },
    },
  })
  check(started == true, "setup() finds the binary and registers the server")
  local file = ws .. "/shapes.py"
  local before = read(file) or ""
  check(is_stub((body_of(before))), "the fixture's rectangle_area is a stub", before)
  vim.cmd("edit " .. file)
  if not wait(20000, function() return cf.client(0) ~= nil end, "the server attaches to a Python buffer") then
    return
  end
  check(true, "the server attaches to a Python buffer")
  if not wait(60000, function() return cf.state.indexed end, "indexing finishes") then
    return
  end
  check(true, "indexing finishes: " .. cf.status())

  -- The docstring code action on the stub, resolved (the model runs here) and applied.
  vim.api.nvim_win_set_cursor(0, { 5, 4 })
  local offered, chosen = {}, false
  local orig_select = vim.ui.select
  vim.ui.select = function(choices, opts, on_choice)
    for i, c in ipairs(choices) do
      local title = (opts.format_item and opts.format_item(c)) or c.title or (c[2] and c[2].title) or (c.action and c.action.title)
      table.insert(offered, title)
      if title:find("Generate `rectangle_area` from its docstring (CodeForge)", 1, true) then
        chosen = true
        log("  (chose) " .. title)
        return on_choice(c, i)
      end
    end
    return on_choice(nil)
  end
  local gen_start = vim.loop.hrtime()
  vim.lsp.buf.code_action()
  wait(20000, function() return #offered > 0 end, "code actions are offered")
  check(chosen, "the CodeForge docstring action is offered and chosen", vim.inspect(offered))
  if not chosen then
    return
  end
  local buf_lines = function() return table.concat(vim.api.nvim_buf_get_lines(0, 0, -1, false), "\n") end
  local applied = wait(FLOW_MS, function()
    return gen_error ~= nil or not is_stub((body_of(buf_lines())))
  end, "the embedded model's edit reaches the buffer")
  vim.ui.select = orig_select
  if gen_error then
    check(false, "the embedded model's edit reaches the buffer", gen_error)
    return
  end
  if not applied then
    return
  end
  check(true, ("the embedded model's edit reaches the buffer (%.0f s after the action)"):format((vim.loop.hrtime() - gen_start) / 1e9))
  vim.cmd("write")
  local disk = read(file) or ""
  local code, found = body_of(disk)
  check(found, "rectangle_area is still defined on disk", disk)
  check(not is_stub(code), "after :write the body on disk is not a stub: " .. table.concat(code, " | "), disk)
  log("  --- rectangle_area on disk ---\n" .. (disk:match("(def rectangle_area.-)\ndef ") or disk))

  -- A verification label (✓, ≈, ⚠ or ✗), whatever it says.
  local function is_label(s)
    return type(s) == "string" and (s:find("^✓") or s:find("^≈") or s:find("^⚠") or s:find("^✗")) ~= nil
  end
  -- The label arrives typed (codeforge/verification); its vim.notify is scheduled: wait for both.
  local function notified_label()
    for _, m in ipairs(notified) do
      if is_label(cf.state.last_verification) and m:find(cf.state.last_verification, 1, true) then
        return true
      end
    end
    return false
  end
  if wait(60000, function() return is_label(cf.state.last_verification) and notified_label() end, "a verification label is recorded and notified") then
    check(true, "a verification label is recorded in status(): " .. cf.status())
    local st = cf.state.last_verification_status
    check(st == "passed" or st == "disputed" or st == "failed" or st == "unverified", "the typed status came with it: " .. tostring(st), st)
    -- The generation's `$/progress` end may come just after the verdict: the statusline shows
    -- "generating" until then.
    if wait(10000, function() return cf.status():find(cf.state.last_verification, 1, true) ~= nil end, "status() shows the label") then
      check(true, "status() shows the label: " .. cf.status())
    end
    local shown = false
    for _, m in ipairs(notified) do
      if m:find(cf.state.last_verification, 1, true) then
        shown = true
      end
    end
    check(shown, "the verification result was shown with vim.notify", vim.inspect(notified))
  end
end

local ok, err = xpcall(run, debug.traceback)
if not ok then
  log("  FAIL Lua error: " .. tostring(err))
  vim.cmd("cquit 2")
end
finish()
