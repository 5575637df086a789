-- CodeForge (execution-verified AI code generation) for Neovim 0.11+: with this directory's parent
-- on 'runtimepath' (any plugin manager does that), `vim.lsp.enable("codeforge")` starts
-- `codeforge lsp` on Python, Rust and Java buffers. Self-contained: it needs none of the plugin's
-- Lua modules (require("codeforge").setup{} is the way for Neovim 0.7-0.10 and adds the
-- statusline helper; on 0.11+ it builds on this file).
--
-- Install the server: `cargo install --locked --path server/cli` in a CodeForge checkout puts
-- `codeforge` in ~/.cargo/bin (keep that on PATH), or set `cmd` to its full path:
--
--   vim.lsp.config("codeforge", {
--     cmd = { "/path/to/codeforge", "lsp" },   -- or { "codeforge", "--cache-dir", DIR, "lsp" }
--     -- The server's settings have the shape of codeforge.toml (index, embeddings, generation,
--     -- verify), the plugin's `settings` option; only what is set is sent, so a workspace's
--     -- codeforge.toml applies otherwise. Sent as initializationOptions:
--     init_options = {
--       generation = { backend = "openai", url = "http://localhost:8000/v1",
--                      model = "Qwen/Qwen2.5-72B-Instruct", api_key_env = "VLLM_API_KEY" },
--     },
--     -- `settings = { codeforge = { ... } }` (same shape) is sent as
--     -- workspace/didChangeConfiguration and wins over init_options.
--   })
--   vim.lsp.enable("codeforge")
--
-- Commands (codeforge.generateFunction, codeforge.reindex, codeforge.trustWorkspace,
-- codeforge.untrustWorkspace, codeforge.completionAccepted) are executed by the server.
-- `:help codeforge` has the rest.

---@type vim.lsp.Config
return {
  cmd = { "codeforge", "lsp" },
  filetypes = { "python", "rust", "java" },
  -- In order: a codeforge.toml, else the repository, else a project file. The server indexes
  -- the root it gets (its workspace folder), so a file with none of these gets no server.
  root_markers = { "codeforge.toml", ".git", "pyproject.toml", "setup.py", "Cargo.toml", "pom.xml", "build.gradle" },
  workspace_required = true,
  handlers = {
    -- The typed verdict of each generation: {uri, target, verification = {status, label, ...}}.
    ["codeforge/verification"] = function(_, result)
      if type(result) == "table" and type(result.verification) == "table" then
        vim.notify(
          "CodeForge: " .. tostring(result.target) .. " — " .. tostring(result.verification.label),
          vim.log.levels.INFO,
          { title = "CodeForge" }
        )
      end
    end,
  },
}
