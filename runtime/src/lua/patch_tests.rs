//! Tests of our changes to Lua itself (vendor/lua-src/README.md) that need no skynet
//! around them: the index of open upvalues, the single-start pattern search, and how
//! shared strings meet a VM's own. Checks that only an assert build of Lua can make are
//! in vendor/lua-src/check (run-testes.sh).

use crate::lua::codecache::with_state;
use crate::lua::testvm::TestVm;
use mlua::ffi;
use std::ffi::CStr;

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

/// Reads the type, mark, `extra` and length bytes of the short string `s` as the VM holds
/// it (Lua 5.5's `TString` on a 64-bit target: a `next` pointer, then those four bytes;
/// the characters start 24 bytes in). The type and length are checked, so a change of
/// layout fails here rather than reading the wrong bytes.
fn short_string_header(vm: &TestVm, s: &CStr) -> [u8; 4] {
    let l = vm.state();
    // SAFETY: the string stays on the stack while its object's first bytes are copied;
    // they lie inside the object, before its characters.
    unsafe {
        let chars = ffi::lua_pushstring(l, s.as_ptr()).cast::<u8>();
        let mut header = [0u8; 4];
        std::ptr::copy_nonoverlapping(chars.sub(16), header.as_mut_ptr(), 4);
        ffi::lua_pop(l, 1);
        assert_eq!(header[0], 4, "LUA_VSHRSTR");
        assert_eq!(header[3] as usize, s.to_bytes().len(), "shrlen");
        header
    }
}

/// The child of `parses_never_write_the_shared_name_global`, in a process of its own.
#[test]
#[ignore = "run by parses_never_write_the_shared_name_global in a fresh process"]
fn fresh_process_parses_of_global() {
    with_state(|_| ());
    let probe = TestVm::new("", &[]);
    let before = short_string_header(&probe, c"global");
    assert_ne!(before[1] & 0x80, 0, "the name is shared");
    assert_eq!(before[2], 0, "marked a name, not a reserved word");
    let parsers: Vec<_> = (0..2)
        .map(|_| {
            std::thread::spawn(|| {
                let vm = TestVm::new("", &[]);
                for _ in 0..50 {
                    vm.check("do global x; x = 1 end local global = 2 assert(global + x == 3)");
                }
            })
        })
        .collect();
    for p in parsers {
        p.join().unwrap();
    }
    assert_eq!(short_string_header(&probe, c"global"), before);
}

/// In compatibility mode `global` is a name that opens a declaration; Lua marks it so at
/// every parse, but a parse must not write the shared string that every VM reads. The
/// check needs a process where nothing has parsed yet.
#[test]
fn parses_never_write_the_shared_name_global() {
    let out = std::process::Command::new(std::env::current_exe().unwrap())
        .args([
            "--exact",
            "lua::patch_tests::fresh_process_parses_of_global",
        ])
        .args(["--ignored", "--test-threads=1", "--nocapture"])
        .output()
        .unwrap();
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success() && text.contains("1 passed"),
        "{text}{}",
        String::from_utf8_lossy(&out.stderr)
    );
}

/// Captures on a deep stack: the index of open upvalues grows with the open upvalues, not
/// with the stack (it used to take a pointer per stack slot, 0.5 MB at this depth).
#[test]
fn an_upvalue_index_on_a_deep_stack_is_small() {
    TestVm::new("", &[]).check(
        r#"
        local src = {}
        for i = 1, 60 do src[#src + 1] = ("local v%d = %d"):format(i, i) end
        src[#src + 1] = "local fs = {}"
        for i = 1, 60 do
            src[#src + 1] = ("fs[%d] = function() return v1 + v%d end"):format(i, i)
        end
        src[#src + 1] = "return fs"
        local chunk = assert(load(table.concat(src, "\n")))
        local function deep(n, f)
            if n == 0 then return f() end
            local r = deep(n - 1, f) -- not a tail call: the stack grows
            return r
        end
        deep(20000, function()
            collectgarbage()
            collectgarbage("stop")
            local before = collectgarbage("count")
            local fs = chunk()
            local grew = collectgarbage("count") - before
            collectgarbage("restart")
            assert(fs[60]() == 61)
            assert(grew < 64, grew .. " KB")
        end)
        "#,
    );
}
