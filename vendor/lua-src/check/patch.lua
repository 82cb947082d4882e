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

-- Shared tables (lua_sharetable): one tree, read in place, never written.
-- A matrix is closed only once nothing of the state holds its tables.
local function sharedchecks()
  local before = "made_before_" .. "the_matrix"  -- the state's own string
  local _, usable = sharetable("return { made_before_the_matrix = 1 }")
  assert(usable == false)  -- it must not see the shared string as well
  local t, ok = sharetable([[
    local f = function(a) return a + 1 end
    local t = { name = "sword", list = { 10, 20, 30 }, f = f, [f] = "key",
                long = ("L"):rep(100), [2.5] = true, __index = { x = 7 } }
    t.self = t  -- a cycle
    return t
  ]])
  assert(ok and issharedtable(t) and issharedtable(t.list))
  assert(not issharedtable({}) and not issharedtable(1))
  assert(t.name == "sword" and #t.list == 3 and t.list[2] == 20)
  assert(t.f(1) == 2 and t[t.f] == "key" and t[2.5] and t.self == t)
  assert(t.long == ("L"):rep(100) and getmetatable(t) == nil)
  local n = 0
  for _ in pairs(t) do n = n + 1 end
  assert(n == 8)
  local function fails(f, text)
    local ok, err = pcall(f)
    assert(not ok and string.find(err, text, 1, true), err)
  end
  fails(function() t.name = 1 end, "attempt to change a table value")
  fails(function() t.new = 1 end, "attempt to change a table value")
  fails(function() t.list[4] = 1 end, "attempt to change a table value")
  fails(function() rawset(t, "name", 1) end, "attempt to change a shared table")
  fails(function() rawset(t.list, 1, 1) end, "attempt to change a shared table")
  fails(function() table.insert(t.list, 1) end, "attempt to change")
  fails(function() setmetatable(t, {}) end, "can't setmetatable to shared table")
  assert(t.name == "sword" and #t.list == 3)
  -- a shared table as a metatable, and held by the state's own objects
  local proxy = setmetatable({}, t)
  assert(proxy.x == 7 and proxy.y == nil)
  local weak = setmetatable({}, { __mode = "k" })
  weak[t.list] = true
  local holder = { t, t.list }
  for _ = 1, 3 do
    collectgarbage()
    collectgarbage("incremental")
    collectgarbage("step", 0)
    collectgarbage("generational")
    collectgarbage()
  end
  assert(weak[t.list] and holder[1].list[3] == 30 and proxy.x == 7)
  -- what cannot be shared raises, and leaves nothing behind
  fails(function() sharetable("return { setmetatable({}, {}) }") end,
        "Can't share metatable")
  fails(function() sharetable("local x return { function() return x end }") end,
        "Invalid function with upvalue")
  fails(function() sharetable("return { coroutine.create(print) }") end,
        "Invalid type [thread]")
  assert(#before > 0)
end
local function sharedagain()
  local again = sharetable("return { name = 'sword' }")
  assert(again.name == "sword")
end
sharedchecks()
collectgarbage()
closeshared()  -- closing a matrix keeps its strings, shared for good
sharedagain()
collectgarbage()
closeshared()

print("patch checks OK")
