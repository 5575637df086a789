-- CodeForge for Neovim 0.7+: starts `codeforge lsp` for Python, Rust and Java buffers, adds the
-- CodeForge commands, a statusline helper and (0.12+) native inline completion.
--
--   require("codeforge").setup({
--     settings = { generation = { backend = "openai", url = "http://gpu:8000/v1", model = "Qwen/Qwen2.5-72B-Instruct" } },
--   })
--
-- `settings` has the shape of codeforge.toml (index, embeddings, generation, verify) and is sent
-- as initializationOptions; `update_settings()` sends workspace/didChangeConfiguration.
-- Starting: vim.lsp.config/vim.lsp.enable on 0.11+ (layered over lsp/codeforge.lua, which also
-- works alone: vim.lsp.enable("codeforge")), vim.lsp.start on 0.8-0.10, and
-- vim.lsp.start_client + buf_attach_client on 0.7, each from a FileType autocmd (no lspconfig).

local M = {}

local uv = vim.loop or vim.uv

M.name = "codeforge"

local defaults = {
  -- Path of the binary; nil: `codeforge` on PATH, else ~/.cargo/bin/codeforge.
  bin = nil,
  -- Full command; overrides bin/cache_dir when set.
  cmd = nil,
  -- `--cache-dir` for indexes and models; nil: CODEFORGE_CACHE_DIR, else ~/.cache/codeforge.
  cache_dir = nil,
  -- Extra environment for the server process.
  cmd_env = nil,
  filetypes = { "python", "rust", "java" },
  root_markers = { "codeforge.toml", ".git", "pyproject.toml", "setup.py", "Cargo.toml", "pom.xml", "build.gradle" },
  -- Server settings in the codeforge.toml shape; only what is set here is sent.
  settings = {},
  -- Native inline completion (Neovim 0.12+: vim.lsp.inline_completion).
  inline_completion = true,
  -- Called as on_attach(client, bufnr) after CodeForge's own attach.
  on_attach = nil,
  -- Show the verification result of each generation with vim.notify.
  notify = true,
}

M.config = vim.deepcopy(defaults)

-- Per-client state for the statusline: progress tasks by token, whether indexing finished, and
-- the last verification (typed status: passed, disputed, failed, unverified; and its label).
M.state = {
  tasks = {},
  indexed = false,
  last_verification = nil,
  last_verification_status = nil,
  last_message = nil,
  client_ids = {},
}

local SECTIONS = { index = true, embeddings = true, generation = true, verify = true }

local function has(feature)
  return vim.fn.has(feature) == 1
end

local function notify(msg, level)
  vim.schedule(function()
    vim.notify(msg, level or vim.log.levels.INFO, { title = "CodeForge" })
  end)
end

local function is_executable(path)
  return path ~= nil and path ~= "" and vim.fn.executable(path) == 1
end

--- The server binary and where it was looked for.
function M.find_binary(cfg)
  cfg = cfg or M.config
  local tried = {}
  if cfg.bin and cfg.bin ~= "" then
    local p = vim.fn.expand(cfg.bin)
    table.insert(tried, p)
    return is_executable(p) and p or nil, tried
  end
  local on_path = vim.fn.exepath("codeforge")
  table.insert(tried, "codeforge on PATH")
  if on_path ~= "" then
    return on_path, tried
  end
  local cargo = vim.fn.expand("~/.cargo/bin/codeforge")
  table.insert(tried, cargo)
  if is_executable(cargo) then
    return cargo, tried
  end
  return nil, tried
end

function M.missing_binary_message(tried)
  return "CodeForge: the `codeforge` binary was not found (looked at: "
    .. table.concat(tried, ", ")
    .. "), so the server is not started. Fix: run `cargo install --locked --path server/cli` in a"
    .. " CodeForge checkout (installs ~/.cargo/bin/codeforge), or pass `bin = '/path/to/codeforge'`"
    .. " to require('codeforge').setup{}; then restart Neovim. See :help codeforge-install"
end

--- The settings layer to send: known sections only, empty sections dropped; nil when empty.
--- Errors (unknown sections) are returned as a list of messages.
function M.layer(settings)
  local layer, problems = {}, {}
  for section, values in pairs(settings or {}) do
    if not SECTIONS[section] then
      table.insert(problems, ("unknown settings section `%s` (expected index, embeddings, generation or verify)"):format(section))
    elseif type(values) ~= "table" then
      table.insert(problems, ("settings.%s must be a table"):format(section))
    elseif next(values) ~= nil then
      layer[section] = values
    end
  end
  if next(layer) == nil then
    return nil, problems
  end
  return layer, problems
end

--- The command line of the server.
function M.cmd(cfg)
  cfg = cfg or M.config
  if cfg.cmd then
    return cfg.cmd
  end
  local bin, tried = M.find_binary(cfg)
  if not bin then
    return nil, tried
  end
  local cmd = { bin }
  if cfg.cache_dir and cfg.cache_dir ~= "" then
    vim.list_extend(cmd, { "--cache-dir", vim.fn.expand(cfg.cache_dir) })
  end
  table.insert(cmd, "lsp")
  return cmd
end

local function find_root(bufnr)
  local name = vim.api.nvim_buf_get_name(bufnr)
  if name == "" then
    return nil
  end
  local dir = vim.fn.fnamemodify(name, ":p:h")
  local prev
  while dir and dir ~= prev do
    for _, marker in ipairs(M.config.root_markers) do
      if uv.fs_stat(dir .. "/" .. marker) then
        return dir
      end
    end
    prev = dir
    dir = vim.fn.fnamemodify(dir, ":h")
  end
  return vim.fn.fnamemodify(name, ":p:h")
end

local function on_progress(result)
  if type(result) ~= "table" or type(result.value) ~= "table" then
    return
  end
  local token = tostring(result.token)
  local v = result.value
  local tasks = M.state.tasks
  if v.kind == "begin" then
    tasks[token] = { title = v.title or "", message = v.message, percentage = v.percentage }
  elseif v.kind == "report" and tasks[token] then
    if v.message then
      tasks[token].message = v.message
    end
    if v.percentage then
      tasks[token].percentage = v.percentage
    end
  elseif v.kind == "end" and tasks[token] then
    local t = tasks[token]
    tasks[token] = nil
    if t.title:lower():find("^indexing") then
      M.state.indexed = true
      M.state.index_message = v.message or t.message
    elseif t.title:lower():find("^generating") then
      -- The verdict itself arrives typed (codeforge/verification), notified from there.
      M.state.last_message = v.message
    end
  end
  vim.schedule(function()
    pcall(vim.cmd, "redrawstatus")
  end)
end

--- A statusline string: "CodeForge: indexing 40%", "CodeForge: generating (…)",
--- "CodeForge ✓ indexed · ✓ 1/1 tests passed", or "" when no CodeForge server runs.
function M.status()
  local running = false
  for _, id in ipairs(M.state.client_ids) do
    local c = vim.lsp.get_client_by_id(id)
    if c then
      running = true
    end
  end
  if not running then
    return ""
  end
  local gen, idx
  for _, t in pairs(M.state.tasks) do
    if t.title:lower():find("^generating") then
      gen = t
    elseif t.title:lower():find("^indexing") then
      idx = t
    end
  end
  if gen then
    return "CodeForge: generating" .. (gen.message and (" (" .. gen.message .. ")") or "")
  end
  if idx then
    return "CodeForge: indexing" .. (idx.percentage and (" " .. math.floor(idx.percentage + 0.5) .. "%") or "")
  end
  local s = M.state.indexed and "CodeForge ✓ indexed" or "CodeForge"
  if M.state.last_verification then
    s = s .. " · " .. M.state.last_verification
  end
  return s
end

-- `codeforge/verification`: the typed verdict of a generation ({uri, target, verification =
-- {status, label, passed, failed, testsFrom, tests}}). `status` is passed, disputed, failed or
-- unverified; the label is only displayed.
local function on_verification(result)
  if type(result) ~= "table" or type(result.verification) ~= "table" then
    return
  end
  M.state.last_verification = result.verification.label
  M.state.last_verification_status = result.verification.status
  if M.config.notify then
    notify("CodeForge: " .. tostring(result.target) .. " — " .. result.verification.label)
  end
end

local function verification_handler(_, result)
  on_verification(result)
end

local function progress_handler(err, result, ctx, config)
  local default = vim.lsp.handlers["$/progress"]
  if default then
    pcall(default, err, result, ctx, config)
  end
  on_progress(result)
end

local function on_attach(client, bufnr)
  if M.config.inline_completion and vim.lsp.inline_completion and vim.lsp.inline_completion.enable then
    pcall(vim.lsp.inline_completion.enable, true, { bufnr = bufnr, client_id = client.id })
  end
  if M.config.on_attach then
    M.config.on_attach(client, bufnr)
  end
end

local function remember(client_id)
  for _, id in ipairs(M.state.client_ids) do
    if id == client_id then
      return
    end
  end
  table.insert(M.state.client_ids, client_id)
end

local function client_config(cmd)
  local init_options, problems = M.layer(M.config.settings)
  for _, p in ipairs(problems) do
    notify("CodeForge: " .. p .. "; not sent", vim.log.levels.WARN)
  end
  return {
    name = M.name,
    cmd = cmd,
    cmd_env = M.config.cmd_env,
    init_options = init_options,
    handlers = { ["$/progress"] = progress_handler, ["codeforge/verification"] = verification_handler },
    on_init = function(client)
      remember(client.id)
    end,
    on_attach = on_attach,
    on_exit = function()
      M.state.tasks = {}
    end,
  }
end

local legacy_clients = {} -- root → client id (0.7)

local function start_legacy(bufnr, cmd)
  local root = find_root(bufnr)
  if not root then
    return
  end
  local id = legacy_clients[root]
  local client = id and vim.lsp.get_client_by_id(id)
  if not client or vim.lsp.client_is_stopped(id) then
    local cfg = client_config(cmd)
    cfg.root_dir = root
    cfg.workspace_folders = { { uri = vim.uri_from_fname(root), name = vim.fn.fnamemodify(root, ":t") } }
    if vim.lsp.start then
      id = vim.lsp.start(cfg, { bufnr = bufnr })
      if id then
        remember(id)
      end
      return id
    end
    id = vim.lsp.start_client(cfg)
    if not id then
      notify("CodeForge: the language server did not start (" .. table.concat(cmd, " ") .. ")", vim.log.levels.ERROR)
      return
    end
    legacy_clients[root] = id
    remember(id)
  end
  vim.lsp.buf_attach_client(bufnr, id)
  return id
end

function M.setup(opts)
  M.state.setup = true
  M.config = vim.tbl_deep_extend("force", vim.deepcopy(defaults), opts or {})
  if opts and opts.settings then
    M.config.settings = opts.settings -- lists (index.exclude) replace, never merge
  end
  local cmd, tried = M.cmd()
  if not cmd then
    -- One warning with the fix; no error, so a config that calls setup{} still loads.
    M.state.missing = M.missing_binary_message(tried)
    notify(M.state.missing, vim.log.levels.WARN)
    return false
  end
  M.state.missing = nil
  local group = vim.api.nvim_create_augroup("codeforge", { clear = true })
  if vim.lsp.config and vim.lsp.enable then
    local cfg = client_config(cmd)
    cfg.filetypes = M.config.filetypes
    cfg.root_dir = function(bufnr, on_dir)
      local root = find_root(bufnr)
      if root then
        on_dir(root)
      end
    end
    vim.lsp.config(M.name, cfg)
    vim.lsp.enable(M.name)
  else
    vim.api.nvim_create_autocmd("FileType", {
      group = group,
      pattern = M.config.filetypes,
      callback = function(args)
        start_legacy(args.buf, cmd)
      end,
    })
  end
  return true
end

--- The CodeForge client attached to `bufnr` (default: current), or nil.
function M.client(bufnr)
  bufnr = (bufnr == nil or bufnr == 0) and vim.api.nvim_get_current_buf() or bufnr
  local clients
  if vim.lsp.get_clients then
    clients = vim.lsp.get_clients({ bufnr = bufnr, name = M.name })
  else
    clients = vim.tbl_values(vim.lsp.buf_get_clients(bufnr)) -- 0.7-0.9
  end
  for _, c in ipairs(clients) do
    if c.name == M.name then
      return c
    end
  end
  return nil
end

-- Client methods: `client:request()` on 0.11+, `client.request()` before.
local NEW_API = has("nvim-0.11")

function M.request(client, method, params, handler, bufnr)
  if NEW_API then
    return client:request(method, params, handler, bufnr)
  end
  return client.request(method, params, handler, bufnr)
end

function M.notify_server(client, method, params)
  if NEW_API then
    return client:notify(method, params)
  end
  return client.notify(method, params)
end

local function require_client(bufnr)
  local c = M.client(bufnr)
  if not c then
    notify(M.state.missing or "CodeForge: no CodeForge server is attached to this buffer", vim.log.levels.WARN)
  end
  return c
end

local function folder_uris(client)
  local uris = {}
  for _, f in ipairs(client.workspace_folders or {}) do
    table.insert(uris, f.uri)
  end
  if #uris == 0 and client.config and client.config.root_dir then
    table.insert(uris, vim.uri_from_fname(client.config.root_dir))
  end
  return uris
end

local function position_params(bufnr)
  local client = M.client(bufnr)
  local enc = client and client.offset_encoding or "utf-16"
  local ok, p = pcall(vim.lsp.util.make_position_params, 0, enc)
  if not ok then
    p = vim.lsp.util.make_position_params()
  end
  return { textDocument = { uri = vim.uri_from_bufnr(bufnr) }, position = p.position }
end

--- codeforge/generate at the cursor; applies the edit. `cb(err, result)` when given.
function M.generate(opts, cb)
  opts = opts or {}
  local bufnr = vim.api.nvim_get_current_buf()
  local client = require_client(bufnr)
  if not client then
    return
  end
  local params = position_params(bufnr)
  params.force = opts.force or nil
  notify("CodeForge: generating…")
  M.request(client, "codeforge/generate", params, function(err, result)
    if err then
      notify("CodeForge: " .. (err.message or vim.inspect(err)), vim.log.levels.ERROR)
    elseif result then
      if type(result.verification) == "table" then
        M.state.last_verification = result.verification.label
        M.state.last_verification_status = result.verification.status
      end
      if type(result.edit) == "table" then
        vim.lsp.util.apply_workspace_edit(result.edit, client.offset_encoding)
        notify("CodeForge: " .. (result.message or "generated"))
      else
        notify("CodeForge: " .. (result.message or result.status), vim.log.levels.WARN)
      end
    end
    if cb then
      cb(err, result)
    end
  end, bufnr)
end

local function execute(name, args, cb)
  local bufnr = vim.api.nvim_get_current_buf()
  local client = require_client(bufnr)
  if not client then
    return
  end
  M.request(client, "workspace/executeCommand", { command = name, arguments = args }, function(err, result)
    if err then
      notify("CodeForge: " .. (err.message or name), vim.log.levels.ERROR)
    end
    if cb then
      cb(err, result, client)
    end
  end, bufnr)
end

function M.reindex(cb)
  execute("codeforge.reindex", {}, function(err, result)
    if not err then
      notify("CodeForge: re-indexing")
    end
    if cb then
      cb(err, result)
    end
  end)
end

function M.trust(trust, cb)
  local client = require_client(0)
  if not client then
    return
  end
  execute(trust and "codeforge.trustWorkspace" or "codeforge.untrustWorkspace", folder_uris(client), function(err, result)
    if not err then
      notify(trust and "CodeForge: tests may now run in this workspace to verify generated code"
        or "CodeForge: tests will never run in this workspace; results stay unverified")
    end
    if cb then
      cb(err, result)
    end
  end)
end

--- The lines describing a codeforge/context answer.
function M.format_context(result)
  local lines = { "CodeForge context for " .. (result.target ~= vim.NIL and result.target or "the cursor") }
  if result.prompt_tokens and result.prompt_tokens ~= vim.NIL then
    lines[1] = lines[1] .. (" (prompt ≈ %d tokens)"):format(result.prompt_tokens)
  end
  if not result.items or #result.items == 0 then
    table.insert(lines, "  nothing would be retrieved")
  end
  for _, i in ipairs(result.items or {}) do
    table.insert(lines, ("  %-9s %-11s %5d tok  %s"):format(i.status or "", i.kind or "", i.tokens or 0, i.label or ""))
  end
  for _, n in ipairs(result.notes or {}) do
    table.insert(lines, "  note: " .. n)
  end
  return lines
end

--- codeforge/context at the cursor, shown in a scratch split. `cb(err, result, lines)` when given.
function M.context(cb)
  local bufnr = vim.api.nvim_get_current_buf()
  local client = require_client(bufnr)
  if not client then
    return
  end
  M.request(client, "codeforge/context", position_params(bufnr), function(err, result)
    local lines
    if err then
      notify("CodeForge: " .. (err.message or "context failed"), vim.log.levels.ERROR)
    elseif result then
      lines = M.format_context(result)
      vim.cmd("botright new")
      local b = vim.api.nvim_get_current_buf()
      vim.api.nvim_buf_set_lines(b, 0, -1, false, lines)
      vim.bo[b].buftype = "nofile"
      vim.bo[b].bufhidden = "wipe"
      vim.bo[b].modifiable = false
      pcall(vim.api.nvim_buf_set_name, b, "codeforge://context")
    end
    if cb then
      cb(err, result, lines)
    end
  end, bufnr)
end

--- Sends new settings (workspace/didChangeConfiguration) to every CodeForge server: those
--- setup() started and (0.10+) any client named codeforge, e.g. from vim.lsp.enable alone.
function M.update_settings(settings)
  M.config.settings = settings or {}
  local layer = M.layer(M.config.settings) or vim.empty_dict()
  local clients, seen = {}, {}
  for _, id in ipairs(M.state.client_ids) do
    table.insert(clients, vim.lsp.get_client_by_id(id))
  end
  if vim.lsp.get_clients then
    vim.list_extend(clients, vim.lsp.get_clients({ name = M.name }))
  end
  for _, c in ipairs(clients) do
    if c and not seen[c.id] then
      seen[c.id] = true
      M.notify_server(c, "workspace/didChangeConfiguration", { settings = { codeforge = layer } })
    end
  end
end

return M
