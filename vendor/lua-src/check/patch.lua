-- Checks of the patch (vendor/lua-src/README.md) for the assert build of
-- run-testes.sh: run by check/slua, whose 'loadfile' shares what it loads.

-- Starting at all checks that a state made after its sharing state has
-- parsed finds "global" marked a name (luaX_init asserts it).
assert(load("local global = 1; return global")() == 1)

-- A coroutine whose captures index its open upvalues, freed by the
-- collector with the index still there: the thread's size must count
-- the index (freeobj asserts it).
local function manylocals(n, yield)
  local src = {}
  for i = 1, n do src[#src + 1] = ("local v%d = %d"):format(i, i) end
  src[#src + 1] = "local fs = {}"
  for i = 1, n do
    src[#src + 1] = ("fs[%d] = function() return v1 + v%d end"):format(i, i)
  end
  src[#src + 1] = yield and "coroutine.yield(fs) return fs" or "return fs"
  return assert(load(table.concat(src, "\n")))
end
for _ = 1, 3 do
  local co = coroutine.create(manylocals(60, true))
  local ok, fs = coroutine.resume(co)
  assert(ok and fs[60]() == 61)
  co, fs = nil, nil
  collectgarbage()
end

-- Captures on a deep stack: the index holds the open upvalues only.
local function deep(n, f)
  if n == 0 then return f() end
  local r = deep(n - 1, f)  -- not a tail call: the stack grows
  return r
end
deep(20000, function()
  collectgarbage()
  local before = collectgarbage("count")
  local fs = manylocals(60)()
  assert(fs[60]() == 61)
  assert(collectgarbage("count") - before < 256)
end)

print("patch checks OK")
