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

-- A string of the state's own, made before an equal one was shared, is
-- the one the state sees: a shared prototype holding that string runs as
-- a private copy made with the state's strings, so keys stay single
-- objects and 'next' finds a dead key by identity.
local name = os.tmpname()
local own = ("only_in_"):rep(1) .. "this_check"
local f = assert(io.open(name, "w"))
f:write("return { only_in_this_check = 1 }, 'only_in_this_check'")
f:close()
local t, key = assert(loadfile(name))()
os.remove(name)
t[key] = nil
collectgarbage()
assert(next(t, own) == nil)
assert(own == key and string.format("%p", own) == string.format("%p", key))

print("patch checks OK")
