-- :checkhealth codeforge — the binary, its version, the isolation test runs get on this machine
-- (`codeforge/health` from the running server, else `codeforge doctor --json`), the generation
-- backend (reachable for an HTTP backend; the model file present for the embedded one).
-- Neovim 0.7 to 0.11+.

local M = {}

local uv = vim.loop or vim.uv

local function reporter()
  local h = vim.health
  if h and h.start then
    return { start = h.start, ok = h.ok, info = h.info, warn = h.warn, error = h.error }
  end
  h = require("health") -- 0.7-0.9
  return { start = h.report_start, ok = h.report_ok, info = h.report_info, warn = h.report_warn, error = h.report_error }
end

--- host, port of an http(s) URL.
function M.parse_url(url)
  local scheme, rest = url:match("^(https?)://(.+)$")
  if not scheme then
    return nil
  end
  local hostport = rest:match("^([^/]+)")
  local host, port = hostport:match("^%[(.+)%]:(%d+)$")
  if not host then
    host, port = hostport:match("^([^:]+):(%d+)$")
  end
  if not host then
    host = hostport
  end
  port = tonumber(port) or (scheme == "https" and 443 or 80)
  return host, port
end

--- Whether a TCP connection to host:port opens within timeout_ms; returns ok, error message.
function M.tcp_reachable(host, port, timeout_ms)
  local addrs = uv.getaddrinfo(host, nil, { socktype = "stream" })
  if not addrs or #addrs == 0 then
    return false, "cannot resolve " .. host
  end
  local done, ok, msg = false, false, nil
  local tcp = uv.new_tcp()
  tcp:connect(addrs[1].addr, port, function(err)
    ok, msg, done = err == nil, err, true
  end)
  vim.wait(timeout_ms or 3000, function()
    return done
  end, 20)
  if not tcp:is_closing() then
    tcp:close()
  end
  if not done then
    return false, "timed out"
  end
  return ok, msg
end

local function cache_dir(cfg)
  if cfg.cache_dir and cfg.cache_dir ~= "" then
    return vim.fn.expand(cfg.cache_dir)
  end
  local env = os.getenv("CODEFORGE_CACHE_DIR")
  if env and env ~= "" then
    return env
  end
  local xdg = os.getenv("XDG_CACHE_HOME")
  if xdg and xdg ~= "" then
    return xdg .. "/codeforge"
  end
  return vim.fn.expand("~/.cache/codeforge")
end

--- The `sandbox` table of a `codeforge/health` result or of `codeforge doctor --json` output (a
--- string: the JSON object is taken from between the first `{` and the last `}`); nil, why otherwise.
function M.parse_sandbox(v)
  if type(v) == "string" then
    local json = v:match("^[^{]*(%b{})")
    if not json then
      return nil, "no JSON object in the output: " .. vim.trim(v)
    end
    local ok, decoded = pcall(vim.fn.json_decode, json)
    if not ok then
      return nil, "unreadable JSON: " .. tostring(decoded)
    end
    v = decoded
  end
  local sb = type(v) == "table" and v.sandbox or nil
  if type(sb) ~= "table" or (sb.level ~= "full" and sb.level ~= "reduced" and sb.level ~= "none") then
    return nil, "no sandbox level in " .. vim.inspect(v)
  end
  if type(sb.missing) ~= "table" then
    sb.missing = {}
  end
  if type(sb.summary) ~= "string" or sb.summary == "" then
    sb.summary = (sb.level == "none" and "no" or sb.level) .. " isolation"
  end
  if type(sb.self_test) ~= "string" then
    sb.self_test = "not run"
  end
  return sb
end

--- The sandbox report: from a running CodeForge client (`codeforge/health`), else from
--- `bin doctor --json`. Returns sandbox, source; or nil, why.
function M.sandbox_health(bin, timeout_ms)
  local cf = require("codeforge")
  local client = cf.client(0)
  if not client then
    for _, id in ipairs(cf.state.client_ids) do
      client = client or vim.lsp.get_client_by_id(id)
    end
  end
  if not client and not cf.state.setup and vim.lsp.get_clients then
    client = vim.lsp.get_clients({ name = cf.name })[1] -- started by vim.lsp.enable alone
  end
  local why
  if client then
    local done, err, result = false, nil, nil
    local ok, sent = pcall(cf.request, client, "codeforge/health", {}, function(e, r)
      err, result, done = e, r, true
    end)
    if ok and sent then
      vim.wait(timeout_ms or 30000, function()
        return done
      end, 20)
    end
    if not ok then
      why = tostring(sent)
    elseif not sent then
      why = "the client is not running"
    elseif not done then
      why = "timed out"
    elseif err then
      why = type(err) == "table" and (err.message or vim.inspect(err)) or tostring(err)
    else
      local sb, perr2 = M.parse_sandbox(result)
      if sb then
        return sb, ("the running server (client %d, codeforge/health)"):format(client.id)
      end
      why = perr2
    end
  end
  if not bin then
    return nil, why and ("the server did not answer codeforge/health: " .. why) or "no binary to run `codeforge doctor`"
  end
  local out = vim.fn.system({ bin, "doctor", "--json" })
  local sb, perr = M.parse_sandbox(out)
  if sb then
    return sb, "`" .. bin .. " doctor --json`" .. (why and (" (the running server did not answer codeforge/health: " .. why .. ")") or "")
  end
  return nil, ("`%s doctor --json` failed (exit %d): %s"):format(bin, vim.v.shell_error, perr)
end

--- Reports the sandbox: ok at full isolation, warn at reduced, error at none or a failed self-test.
function M.report_sandbox(r, sb, source)
  r.info("from " .. source)
  local lower = {
    "Below full isolation tests do not run (results stay unverified) unless your own ~/.config/codeforge/config.toml sets"
      .. ' verify.sandbox = "' .. sb.level .. '" under [verify] (a workspace\'s codeforge.toml cannot lower it)',
    "Full isolation needs Linux 5.13+ with unprivileged user namespaces, Landlock and seccomp; `codeforge doctor` says what is missing",
  }
  if sb.level == "full" then
    r.ok(sb.summary)
  elseif sb.level == "reduced" then
    r.warn(sb.summary, lower)
  else
    r.error(sb.summary, lower)
  end
  for _, m in ipairs(sb.missing) do
    r.info("missing: " .. tostring(m))
  end
  if sb.self_test == "passed" then
    r.ok("sandbox self-test passed (a contained run wrote only its scratch dir)")
  else
    r.error("sandbox self-test failed: " .. sb.self_test, {
      "Test runs may fail or be less contained than reported; run `codeforge doctor` for details",
    })
  end
end

M.QWEN_REL = "models/qwen2.5-coder-0.5b-instruct/qwen2.5-coder-0.5b-instruct.gguf"

--- Without require("codeforge").setup{}, on 0.11+: the resolved `vim.lsp.config.codeforge`
--- (lsp/codeforge.lua and the user's vim.lsp.config calls), else nil.
function M.lsp_config()
  if require("codeforge").state.setup or type(vim.lsp.config) ~= "table" then
    return nil
  end
  local ok, c = pcall(function()
    return vim.lsp.config.codeforge
  end)
  return ok and type(c) == "table" and c or nil
end

--- The settings layer (codeforge.toml shape) a vim.lsp.config sends: init_options, then
--- settings.codeforge over it (both may wrap it in a `codeforge` key, as the server accepts).
function M.config_settings(c)
  local function unwrap(t)
    if type(t) ~= "table" then
      return {}
    end
    return type(t.codeforge) == "table" and t.codeforge or t
  end
  return vim.tbl_deep_extend("force", unwrap(c.init_options), type(c.settings) == "table" and unwrap(c.settings.codeforge) or {})
end

function M.check()
  local r = reporter()
  local cf = require("codeforge")
  local cfg = cf.config
  local lsp_cfg = M.lsp_config()
  local settings = lsp_cfg and M.config_settings(lsp_cfg) or cfg.settings or {}
  r.start("CodeForge: server binary")
  local bin
  if cfg.cmd then
    bin = cfg.cmd[1]
    r.info("using the configured cmd: " .. table.concat(cfg.cmd, " "))
  elseif lsp_cfg and type(lsp_cfg.cmd) == "table" and lsp_cfg.cmd[1] then
    r.info("using vim.lsp.config.codeforge.cmd: " .. table.concat(lsp_cfg.cmd, " "))
    bin = vim.fn.exepath(vim.fn.expand(lsp_cfg.cmd[1]))
    if bin == "" then
      r.error("`" .. lsp_cfg.cmd[1] .. "` was not found (not on PATH, or not executable)", {
        "Install it: cargo install --locked --path server/cli in a CodeForge checkout (puts it in ~/.cargo/bin; keep that on PATH)",
        "or give its full path: vim.lsp.config('codeforge', { cmd = { '/path/to/codeforge', 'lsp' } })",
      })
      return
    end
  else
    local tried
    bin, tried = cf.find_binary(cfg)
    if not bin then
      r.error("the `codeforge` binary was not found (looked at: " .. table.concat(tried, ", ") .. ")", {
        "Install it: cargo install --locked --path server/cli in a CodeForge checkout (puts it in ~/.cargo/bin)",
        "or pass bin = '/path/to/codeforge' to require('codeforge').setup{}",
      })
      return
    end
  end
  if vim.fn.executable(bin) ~= 1 then
    r.error(bin .. " is not executable")
    return
  end
  r.ok("binary found: " .. bin)
  local out = vim.fn.system({ bin, "--version" })
  if vim.v.shell_error ~= 0 then
    r.error("`" .. bin .. " --version` failed (exit " .. vim.v.shell_error .. "): " .. vim.trim(out))
  else
    r.ok("version: " .. vim.trim(out))
  end

  r.start("CodeForge: language server")
  local client = cf.client(0)
  local running = #cf.state.client_ids > 0
  if not running and vim.lsp.get_clients then
    running = #vim.lsp.get_clients({ name = cf.name }) > 0
  end
  if client then
    r.ok(("attached to this buffer (client %d, root %s)"):format(client.id, client.config.root_dir or "?"))
  elseif running then
    r.info("running, not attached to this buffer (CodeForge serves python, rust and java buffers)")
  else
    r.warn("not running: call vim.lsp.enable('codeforge') (Neovim 0.11+) or require('codeforge').setup{},"
      .. " and open a Python, Rust or Java file in a project (codeforge.toml, .git, pyproject.toml, Cargo.toml, pom.xml, …)")
  end
  r.info("status: " .. (cf.status() ~= "" and cf.status() or "(none)"))

  r.start("CodeForge: sandbox for test runs")
  local sb, source = M.sandbox_health(bin)
  if sb then
    M.report_sandbox(r, sb, source)
  else
    r.error("cannot tell which isolation test runs get: " .. source, { "Run `codeforge doctor` in a terminal" })
  end

  r.start("CodeForge: generation backend")
  local gen = settings.generation or {}
  local backend = gen.backend or (gen.url and "openai") or "embedded"
  if backend == "openai" then
    local url = gen.url
    if not url then
      r.error("generation.backend = \"openai\" needs generation.url (e.g. http://localhost:8000/v1)")
    else
      local host, port = M.parse_url(url)
      if not host then
        r.error("generation.url is not an http(s) URL: " .. url)
      else
        local ok, err = M.tcp_reachable(host, port, 3000)
        if ok then
          r.ok(("backend reachable: %s (%s:%d)"):format(url, host, port))
        else
          r.error(("backend not reachable: %s (%s:%d): %s"):format(url, host, port, tostring(err)), {
            "Start the model server (vLLM, SGLang, Ollama, llama.cpp) or fix generation.url",
          })
        end
      end
      if gen.api_key_env then
        local v = os.getenv(gen.api_key_env)
        if v and v ~= "" then
          r.ok("API key variable " .. gen.api_key_env .. " is set")
        else
          r.warn("API key variable " .. gen.api_key_env .. " is not set in Neovim's environment")
        end
      end
    end
  else
    local dir_cfg = cfg
    if lsp_cfg and type(lsp_cfg.cmd) == "table" then
      for i, a in ipairs(lsp_cfg.cmd) do
        if a == "--cache-dir" and lsp_cfg.cmd[i + 1] then
          dir_cfg = { cache_dir = lsp_cfg.cmd[i + 1] }
        end
      end
    end
    local gguf = gen.gguf and vim.fn.expand(gen.gguf) or (cache_dir(dir_cfg) .. "/" .. M.QWEN_REL)
    if vim.fn.filereadable(gguf) == 1 then
      r.ok("embedded model present: " .. gguf)
    else
      r.error("embedded model missing: " .. gguf, {
        "Run `codeforge model pull embedded` (installs Qwen2.5-Coder-0.5B-Instruct, 491 MB, sha256 verified)",
        "or set generation.gguf, or use an OpenAI-compatible backend (generation.backend = \"openai\")",
      })
    end
  end
end

return M
