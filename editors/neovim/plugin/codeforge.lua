-- CodeForge user commands (the server starts only after require("codeforge").setup{}).
if vim.g.loaded_codeforge then
  return
end
vim.g.loaded_codeforge = 1

local function cf()
  return require("codeforge")
end

vim.api.nvim_create_user_command("CodeForgeGenerate", function(o)
  cf().generate({ force = o.bang })
end, { bang = true, desc = "CodeForge: generate the function at the cursor from its docstring (! regenerates an implemented one)" })

vim.api.nvim_create_user_command("CodeForgeReindex", function()
  cf().reindex()
end, { desc = "CodeForge: re-index the workspace" })

vim.api.nvim_create_user_command("CodeForgeContext", function()
  cf().context()
end, { desc = "CodeForge: show what would be retrieved for the function at the cursor" })

vim.api.nvim_create_user_command("CodeForgeTrust", function()
  cf().trust(true)
end, { desc = "CodeForge: allow running this workspace's tests to verify generated code" })

vim.api.nvim_create_user_command("CodeForgeUntrust", function()
  cf().trust(false)
end, { desc = "CodeForge: never run this workspace's tests" })

vim.api.nvim_create_user_command("CodeForgeStatus", function()
  print(cf().status())
end, { desc = "CodeForge: print the statusline text" })
