-- `skynet lua test/lpeg_test.lua`: runs lpeg_cases.lua in the interpreter and prints
-- `OK` when every case passed. Run from the repository root (it finds lpeg_cases.lua
-- next to itself and re.lua in lualib/).
local dir = arg[0]:match("^(.*)/[^/]*$") or "."
package.path = dir .. "/?.lua;" .. dir .. "/../lualib/?.lua;" .. package.path
local run = require "lpeg_cases"
local n = run(function(name) print("case " .. name) end)
print(("%d cases"):format(n))
print("OK")
