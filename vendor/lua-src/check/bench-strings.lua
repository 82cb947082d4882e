-- Short-string key lookups, the cost of string equality in tables (item 4 of issue 8).
-- Run it with a stand-alone build of the patched Lua: check/slua runs the file as a
-- shared prototype, so its constants are shared strings, as in a service.
--   slua bench-strings.lua [rounds]
local rounds = tonumber(arg and arg[1]) or 5
local N = 10000000

local function best(f)
  local min = math.huge
  for _ = 1, rounds do
    local t0 = os.clock()
    f()
    min = math.min(min, os.clock() - t0)
  end
  return min
end

-- a table of 16 fields, some keys made at run time (the VM's own strings)
local t = { alpha = 1, beta = 2, gamma = 3, delta = 4, epsilon = 5, zeta = 6, eta = 7 }
for i = 1, 9 do t["field" .. i] = i end

local results = {
  { "absent keys", best(function()
    local n = 0
    for _ = 1, N do
      if t.omega then n = n + 1 end
      if t.kappa then n = n + 1 end
      if t.lambda then n = n + 1 end
      if t.mu then n = n + 1 end
    end
    assert(n == 0)
  end) },
  { "field access", best(function()
    local o = { x = 1, y = 2, z = 3, vx = 0, vy = 0, vz = 0, mass = 1, name = "p" }
    for _ = 1, N do
      o.vx = o.vx + o.x * o.mass
      o.vy = o.vy + o.y * o.mass
      o.vz = o.vz + o.z * o.mass
    end
    assert(o.vx == N)
  end) },
  { "method calls", best(function()
    local class = {}
    class.__index = class
    function class:get() return self.v end
    local obj = setmetatable({ v = 1 }, class)
    local n = 0
    for _ = 1, N do n = n + obj:get() end
    assert(n == N)
  end) },
}
for _, r in ipairs(results) do
  print(string.format("%-14s %.3f s", r[1], r[2]))
end
