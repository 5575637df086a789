-- The plugin as installed, without require("codeforge").setup{} doing the work: in a real headless
-- Neovim, run by run.sh after e2e.lua, in a fresh Neovim on a fresh copy of the fixture.
--   0.11+: lsp/codeforge.lua from 'runtimepath' + vim.lsp.config (the test's binary and the stub
--          model) + vim.lsp.enable("codeforge"): a client named codeforge attaches to a Python
--          buffer, answers a code action and a completion request with the settings given as
--          init_options, resolves the code action (its verdict shown by the handler of
--          lsp/codeforge.lua); the plugin's commands and :checkhealth codeforge work with that client.
--   all:   :help codeforge (the doc's tags built with :helptags into a scratch copy, every
--          |codeforge…| link resolving); setup{} with a missing binary warns once and raises no error.
-- Environment from run.sh: CF_BIN, CF_WS, CF_CACHE, CF_PORT, CF_LOG, CF_TEST_KEY, CF_PLUGIN,
-- CF_SCRATCH (an empty directory), HOME (a scratch directory: no ~/.cargo/bin/codeforge).
-- Exit status: 0 all passed, 1 failures, 2 a Lua error, 3 the watchdog fired.

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
local function version()
  local v = vim.version()
  return v.major .. "." .. v.minor .. "." .. v.patch
end
local function finish()
  local what = vim.fn.has("nvim-0.11") == 1 and "vim.lsp.enable, :help, missing binary" or ":help, missing binary"
  log(("neovim %s: %s: %d checks, %d failed"):format(version(), what, #results, failed))
  vim.cmd(failed == 0 and "qall!" or "cquit 1")
end

vim.defer_fn(function()
  log("  FAIL watchdog: the test did not finish in 60 s")
  vim.cmd("cquit 3")
end, 60000)

local env = function(k)
  local v = os.getenv(k)
  assert(v and v ~= "", "missing environment variable " .. k)
  return v
end

local function wait(ms, cond, what)
  local ok = vim.wait(ms, cond, 50)
  if not ok then
    check(false, what, "timed out after " .. ms .. " ms")
  end
  return ok
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

local function buf_text()
  return table.concat(vim.api.nvim_buf_get_lines(0, 0, -1, false), "\n")
end

-- The first result of a request to the buffer's servers, retried until `accept` takes it.
local function request(method, params, accept, tries)
  for _ = 1, tries or 20 do
    local resp = vim.lsp.buf_request_sync(0, method, params, 10000)
    for _, r in pairs(resp or {}) do
      if r.result and accept(r.result) then
        return r.result
      end
    end
    vim.wait(300)
  end
end

local function lsp_enable()
  local ws, cache, port, plugin = env("CF_WS"), env("CF_CACHE"), env("CF_PORT"), env("CF_PLUGIN")
  local url = "http://127.0.0.1:" .. port .. "/v1"

  -- lsp/codeforge.lua itself: what nvim-lspconfig could carry as-is.
  local file = vim.api.nvim_get_runtime_file("lsp/codeforge.lua", true)
  check(#file == 1 and file[1] == plugin .. "/lsp/codeforge.lua", "lsp/codeforge.lua is found on 'runtimepath'", vim.inspect(file))
  local base = file[1] and dofile(file[1]) or {}
  check(vim.deep_equal(base.cmd, { "codeforge", "lsp" }), "its cmd is { \"codeforge\", \"lsp\" } (found on PATH)", vim.inspect(base.cmd))
  check(vim.deep_equal(base.filetypes, { "python", "rust", "java" }), "its filetypes are python, rust, java", vim.inspect(base.filetypes))
  check(type(base.root_markers) == "table" and vim.tbl_contains(base.root_markers, ".git")
    and vim.tbl_contains(base.root_markers, "pyproject.toml") and vim.tbl_contains(base.root_markers, "Cargo.toml")
    and vim.tbl_contains(base.root_markers, "pom.xml"), "its root_markers include .git, pyproject.toml, Cargo.toml, pom.xml", vim.inspect(base.root_markers))

  vim.lsp.config("codeforge", {
    cmd = { env("CF_BIN"), "--cache-dir", cache, "lsp" },
    init_options = {
      embeddings = { backend = "none" },
      generation = { backend = "openai", url = url, model = "stub-enable", api_key_env = "CF_TEST_KEY" },
      verify = { rounds = 0, trust = "never" }, -- no question to answer; the verdict is unverified
    },
  })
  local resolved = vim.lsp.config.codeforge
  check(resolved and vim.deep_equal(resolved.filetypes, { "python", "rust", "java" }) and resolved.cmd[1] == env("CF_BIN"),
    "vim.lsp.config layers the user's cmd over lsp/codeforge.lua", resolved and vim.inspect(resolved.cmd))
  vim.lsp.enable("codeforge")

  vim.cmd("edit " .. ws .. "/shapes.py")
  local client
  if not wait(20000, function()
    client = vim.lsp.get_clients({ bufnr = 0, name = "codeforge" })[1]
    return client ~= nil
  end, "vim.lsp.enable(\"codeforge\") attaches a client named codeforge to a Python buffer") then
    return
  end
  check(true, "vim.lsp.enable(\"codeforge\") attaches a client named codeforge to a Python buffer (client " .. client.id .. ")")
  check(client.config.root_dir == ws, "the root comes from root_markers (pyproject.toml)", client.config.root_dir)

  -- The docstring code action is offered (the model runs only when it is resolved).
  local title = "Generate `rectangle_area` from its docstring (CodeForge)"
  local actions = request("textDocument/codeAction", {
    textDocument = { uri = vim.uri_from_bufnr(0) },
    range = { start = { line = 4, character = 4 }, ["end"] = { line = 4, character = 4 } },
    context = { diagnostics = {} },
  }, function(res)
    for _, a in ipairs(res) do
      if a.title == title then
        return true
      end
    end
  end)
  check(actions ~= nil, "textDocument/codeAction answers with the CodeForge action", vim.inspect(actions))

  -- Resolving it runs the model; the verdict comes as codeforge/verification, which the handler
  -- in lsp/codeforge.lua shows with vim.notify.
  local action
  for _, a in ipairs(actions or {}) do
    action = a.title == title and a or action
  end
  if action then
    local notes, orig = {}, vim.notify
    vim.notify = function(msg, level)
      table.insert(notes, { msg = msg, level = level })
    end
    local resp = client:request_sync("codeAction/resolve", action, 30000, 0)
    local edit = resp and resp.result and resp.result.edit
    check(type(edit) == "table", "codeAction/resolve returns the generated edit", vim.inspect(resp))
    local verdict
    wait(10000, function()
      for _, n in ipairs(notes) do
        if n.msg:find("^CodeForge: .* — ⚠ unverified") then
          verdict = n
        end
      end
      return verdict ~= nil
    end, "the verdict arrives")
    vim.notify = orig
    check(verdict and verdict.level == vim.log.levels.INFO, "lsp/codeforge.lua's handler shows the codeforge/verification verdict", vim.inspect(notes))
  end

  -- Completion: the stub model answers, asked with the settings given as init_options.
  vim.api.nvim_buf_set_lines(0, 11, 12, false, { "    " })
  local completion = request("textDocument/completion", {
    textDocument = { uri = vim.uri_from_bufnr(0) },
    position = { line = 11, character = 4 },
    context = { triggerKind = 1 },
  }, function(res)
    for _, i in ipairs(res.items or res) do
      if type(i.labelDetails) == "table" and tostring(i.labelDetails.description):find("^CodeForge: rest of") then
        return true
      end
    end
  end)
  check(completion ~= nil, "textDocument/completion answers with CodeForge items")
  local asked
  for line in (read(env("CF_LOG")) or ""):gmatch("[^\n]+") do
    local r = vim.fn.json_decode(line)
    if r.model == "stub-enable" then
      asked = r
    end
  end
  check(asked ~= nil, "init_options from vim.lsp.config reach the server (the model asked is stub-enable)")
  check(asked and asked.authorization == "Bearer " .. env("CF_TEST_KEY"), "the request carries the key named by api_key_env", asked and asked.authorization)
  vim.cmd("silent! undo")

  -- Nothing of the plugin's Lua was needed so far; its commands work with this client.
  check(package.loaded["codeforge"] == nil, "the config needed none of the plugin's Lua modules")
  local cf = require("codeforge")
  check(cf.client(0) and cf.client(0).id == client.id, "require('codeforge').client() finds the vim.lsp.enable client")
  local re
  cf.reindex(function(err, result)
    re = { err = err, result = result }
  end)
  if wait(10000, function() return re ~= nil end, ":CodeForgeReindex answers on the vim.lsp.enable client") then
    check(re.err == nil and re.result and re.result.workspaces == 1, ":CodeForgeReindex works on the vim.lsp.enable client", vim.inspect(re))
  end

  -- :checkhealth reads the binary and the backend from vim.lsp.config.codeforge.
  vim.cmd("checkhealth codeforge")
  local health = buf_text()
  vim.cmd("silent! tabclose")
  check(health:find("binary found: " .. env("CF_BIN"), 1, true) ~= nil, "checkhealth finds the binary of vim.lsp.config's cmd", health)
  check(health:find("backend reachable: " .. url, 1, true) ~= nil, "checkhealth checks the backend of vim.lsp.config's init_options", health)
  check(health:find("from the running server (client " .. client.id .. ", codeforge/health)", 1, true) ~= nil,
    "checkhealth asks the vim.lsp.enable client for the sandbox", health)
end

local function help()
  local plugin, scratch = env("CF_PLUGIN"), env("CF_SCRATCH")
  -- :helptags writes `tags` beside the file: build them in a copy, not in the source tree.
  local doc = scratch .. "/rtp/doc"
  vim.fn.mkdir(doc, "p")
  local text = read(plugin .. "/doc/codeforge.txt")
  if not check(text ~= nil, "doc/codeforge.txt exists") then
    return
  end
  local f = assert(io.open(doc .. "/codeforge.txt", "w"))
  f:write(text)
  f:close()
  local ok, err = pcall(vim.cmd, "helptags " .. vim.fn.fnameescape(doc))
  check(ok, ":helptags accepts the doc (no duplicate tags)", err)
  vim.opt.runtimepath:append(scratch .. "/rtp")
  ok, err = pcall(vim.cmd, "help codeforge")
  check(ok and vim.bo.buftype == "help" and vim.api.nvim_buf_get_name(0):find("codeforge%.txt$") ~= nil,
    ":help codeforge opens the help", err or vim.api.nvim_buf_get_name(0))
  check(ok and vim.api.nvim_get_current_line():find("*codeforge*", 1, true) ~= nil, ":help codeforge lands on the *codeforge* tag", vim.api.nvim_get_current_line())
  vim.cmd("silent! helpclose")
  -- :help TAG lands on the line holding *TAG* in codeforge.txt.
  local function lands(tag)
    local done = pcall(vim.cmd, "help " .. tag)
    local hit = done and vim.api.nvim_buf_get_name(0):find("codeforge%.txt$") ~= nil
      and vim.api.nvim_get_current_line():find("*" .. tag .. "*", 1, true) ~= nil
    vim.cmd("silent! helpclose")
    return hit
  end
  for _, tag in ipairs({ "codeforge-install", "codeforge-setup", "codeforge-lsp-enable", "codeforge-settings",
    "codeforge-commands", "codeforge-health", ":CodeForgeGenerate", "codeforge.setup()" }) do
    check(lands(tag), ":help " .. tag .. " lands on its tag")
  end
  local broken, seen = {}, {}
  for link in text:gmatch("|([^|%s]+)|") do
    if (link:find("^codeforge") or link:find("^:CodeForge")) and not seen[link] then
      seen[link] = true
      if not lands(link) then
        table.insert(broken, link)
      end
    end
  end
  check(next(seen) ~= nil and #broken == 0, "every |codeforge…| link in the doc leads to its tag", table.concat(broken, ", "))
  for _, needed in ipairs({ 'vim.lsp.enable("codeforge")', 'require("codeforge").setup', "cargo install --locked --path",
    "build = ", ":checkhealth codeforge" }) do
    check(text:find(needed, 1, true) ~= nil, "the doc covers " .. needed)
  end
end

local function missing_binary()
  local cf = require("codeforge")
  local notes, orig = {}, vim.notify
  vim.notify = function(msg, level, opts)
    table.insert(notes, { msg = msg, level = level })
  end
  local ok, started = pcall(cf.setup, { bin = env("CF_SCRATCH") .. "/nowhere/codeforge" })
  vim.wait(500, function() return #notes > 0 end, 20)
  vim.wait(200) -- a second message would come in this time
  check(ok, "setup{} with a missing binary raises no error", started)
  check(ok and started == false, "setup{} returns false", started)
  check(#notes == 1, "setup{} with a missing binary notifies once", vim.inspect(notes))
  local n = notes[1] or {}
  check(n.level == vim.log.levels.WARN, "the notification is a warning (vim.log.levels.WARN)", n.level)
  check(n.msg and n.msg:find("nowhere/codeforge", 1, true) and n.msg:find("cargo install --locked --path server/cli", 1, true)
    and n.msg:find("bin = ", 1, true), "it names the path tried and says what to do", n.msg)
  check(vim.fn.exists("#codeforge#FileType") == 0, "no server is registered")

  -- No `bin`, nothing on PATH, no ~/.cargo/bin/codeforge (run.sh points HOME at an empty directory).
  notes = {}
  local path = vim.env.PATH
  vim.env.PATH = env("CF_SCRATCH")
  ok, started = pcall(cf.setup, {})
  vim.env.PATH = path
  vim.wait(500, function() return #notes > 0 end, 20)
  vim.wait(200)
  check(ok and started == false, "setup{} without a binary anywhere raises no error and returns false", started)
  check(#notes == 1 and notes[1].level == vim.log.levels.WARN and notes[1].msg:find("codeforge on PATH", 1, true) ~= nil
    and notes[1].msg:find("cargo install --locked", 1, true) ~= nil,
    "it warns once, naming PATH and ~/.cargo/bin, with the fix", vim.inspect(notes))
  vim.notify = orig
end

local function run()
  if vim.fn.has("nvim-0.11") == 1 then
    lsp_enable()
  end
  help()
  missing_binary()
end

local ok, err = xpcall(run, debug.traceback)
if not ok then
  log("  FAIL Lua error: " .. tostring(err))
  vim.cmd("cquit 2")
end
finish()
