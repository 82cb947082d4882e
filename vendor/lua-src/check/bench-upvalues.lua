-- Calls that open 30 upvalues, at a shallow and a deep stack (item 5 of issue 8): the
-- index of open upvalues should cost the same at both depths. Stock Lua walks its list.
--   slua bench-upvalues.lua [rounds]
local rounds = tonumber(arg and arg[1]) or 5
local CALLS = 20000

local src = {}
for i = 1, 30 do src[#src + 1] = ("local v%d = %d"):format(i, i) end
-- each captures v1 too, under all the others: a walk of the whole list
for i = 1, 30 do src[#src + 1] = ("local function f%d() return v1 + v%d end"):format(i, i) end
src[#src + 1] = "return f30() + f2()"
local opener = assert(load(table.concat(src, "\n")))

local function at(depth, f)
  if depth == 0 then return f() end
  return at(depth - 1, f) + 0
end

-- in a coroutine of its own, whose open upvalues are only those of each call
local function best(depth)
  local min = math.huge
  for _ = 1, rounds do
    local t = coroutine.wrap(at)(depth, function()
      local t0 = os.clock()
      for _ = 1, CALLS do assert(opener() == 34) end
      return os.clock() - t0
    end)
    min = math.min(min, t)
  end
  return min
end

for _, depth in ipairs({ 10, 20000 }) do
  print(string.format("depth %-6d %.3f s", depth, best(depth)))
end
