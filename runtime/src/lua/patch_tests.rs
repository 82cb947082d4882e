//! Tests of our changes to Lua itself (vendor/lua-src/README.md) that need no skynet
//! around them: the index of open upvalues and the single-start pattern search.

use crate::lua::testvm::TestVm;

/// A main chunk with many locals captured by many closures (the shape that gives a thread
/// an index of its open upvalues), checked against a plain table of the values, while the
/// stack moves, the collector runs, loops make fresh variables and a coroutine indexes
/// its own list.
const UPVALUES: &str = r#"
local N = 80
local function mid(i) return i * 7 % (N - 1) + 2 end
local src = {}
for i = 1, N do src[#src + 1] = ("local v%d = %d"):format(i, i) end
src[#src + 1] = "local fs = {}"
for i = 1, N do
	src[#src + 1] = ("fs[%d] = function(x) if x then v%d = x end return v1 + v%d + v%d end")
		:format(i, i, mid(i), i)
end
src[#src + 1] = [[
local function deep(n) if n == 0 then return 0 end return 1 + deep(n - 1) end
assert(deep(5000) == 5000)
collectgarbage()
local loops = {}
for i = 1, 50 do
	local k = i * 10
	loops[i] = function() return k end
end
for i = 1, 50 do assert(loops[i]() == i * 10) end
local co = coroutine.wrap(function()
]]
for i = 1, 30 do src[#src + 1] = ("local c%d = %d"):format(i, i) end
for i = 1, 30 do src[#src + 1] = ("local g%d = function() return c1 + c%d end"):format(i, i) end
src[#src + 1] = "coroutine.yield(g30() + g2()) c1 = 100 return g30() end)"
src[#src + 1] = "assert(co() == 31 + 3 and co() == 130)"
src[#src + 1] = "return fs"
local fs = assert(load(table.concat(src, "\n")))()
local v = {}
for i = 1, N do v[i] = i end
local function check()
	for i = 1, N do assert(fs[i]() == v[1] + v[mid(i)] + v[i], i) end
end
check()
fs[1](1000) v[1] = 1000
check()
fs[40](7) v[40] = 7
check()
"#;

#[test]
fn closures_share_and_keep_their_upvalues_with_an_index() {
    TestVm::new("", &[]).check(UPVALUES);
}

/// `string.find`/`string.match` try a pattern that opens with `.*` at one start only;
/// results must equal an anchored attempt at every start.
#[test]
fn leading_dot_star_patterns_find_what_every_start_would() {
    TestVm::new("", &[]).check(
        r#"
            local patterns = {
                "(.*/)[^/?]+$", "(.*/).+$", ".*b", "(.*)a(.)", ".*%.b$", "((.*)/)(%w*)",
                ".*()b", "(.*)[ab]$", "(.*)%1", "(.*)(a)%2", "(.*)a%1", ".*", "(.*)", ".*%f[/]",
            }
            local chars = { "a", "b", "/", "?", "." }
            math.randomseed(3)
            local checked = 0
            for _ = 1, 400 do
                local t = {}
                for i = 1, math.random(0, 12) do t[i] = chars[math.random(#chars)] end
                local s = table.concat(t)
                for _, p in ipairs(patterns) do
                    for init = 1, #s + 1, 3 do
                        local got = table.pack(string.find(s, p, init))
                        local want = { n = 1 }
                        for start = init, #s + 1 do
                            local r = table.pack(string.find(s, "^" .. p, start))
                            if r[1] then want = r break end
                        end
                        assert(got.n == want.n, p .. " on " .. s)
                        for i = 1, got.n do
                            assert(got[i] == want[i], p .. " on " .. s .. " at " .. init)
                        end
                        local m = table.pack(string.match(s, p, init))
                        if not got[1] then
                            assert(m[1] == nil)
                        elseif got.n == 2 then
                            assert(m[1] == s:sub(got[1], got[2]))
                        else
                            for i = 3, got.n do assert(m[i - 2] == got[i]) end
                        end
                        checked = checked + 1
                    end
                end
            end
            assert(checked > 10000)
        "#,
    );
}
