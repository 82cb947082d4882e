//! Tests of our changes to Lua itself (vendor/lua-src/README.md) that need no skynet
//! around them: the index of open upvalues, the single-start pattern search, and how
//! shared strings meet a VM's own. Checks that only an assert build of Lua can make are
//! in vendor/lua-src/check (run-testes.sh).

use crate::lua::codecache::{install, with_state};
use crate::lua::lshared::{lua_maketemplate, lua_pushtemplate};
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

/// The child of `parses_never_write_the_shared_name_global`, in a process of its own. Its
/// first VM already takes the shared names: making a VM makes the codecache state first.
#[test]
#[ignore = "run by parses_never_write_the_shared_name_global in a fresh process"]
fn fresh_process_parses_of_global() {
    let probe = TestVm::new("", &[]);
    let before = short_string_header(&probe, c"global");
    assert_ne!(before[1] & 0x80, 0, "the name is shared");
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
    assert_eq!(
        short_string_header(&probe, c"global"),
        before,
        "written by a parse"
    );
    assert_eq!(before[2], 0, "marked a name, not a reserved word");
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

/// A file in a fresh scratch directory, removed (with the directory) when dropped.
struct ScratchFile(std::path::PathBuf);

impl ScratchFile {
    fn new(tag: &str, text: &str) -> ScratchFile {
        let dir = std::env::temp_dir().join(format!("patch_tests_{tag}_{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let path = dir.join("file.lua");
        std::fs::write(&path, text).unwrap();
        ScratchFile(path)
    }

    fn name(&self) -> String {
        self.0.display().to_string()
    }
}

impl Drop for ScratchFile {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(self.0.parent().unwrap());
    }
}

/// A VM that made a string before an equal one was shared keeps seeing its own object:
/// it runs a private copy of the shared prototype holding the string, made with its own
/// strings (from the cached code: the file is not read again). So `next` finds a key whose
/// entry has died by the key's own string, as stock Lua does (dead keys compare by
/// identity); a VM made later takes the shared string everywhere.
#[test]
fn a_vm_sees_one_object_per_string_even_when_it_made_its_own_first() {
    let file = ScratchFile::new(
        "next",
        "return { patch_next_key = 1 }, 'patch_next_key', function() return 'patch_next_key' end",
    );
    let name = file.name();
    let run = |vm: &TestVm| {
        vm.check(&format!(
            r#"
            local own = ("patch_next"):rep(1) .. "_key"
            local t, key, get = assert(loadfile('{name}'))()
            t[key] = nil
            collectgarbage()
            assert(next(t, own) == nil)
            local function addr(s) return string.format('%p', s) end
            assert(addr(own) == addr(key) and addr(get()) == addr(own))
            t[own] = 2
            assert(t.patch_next_key == 2 and t[get()] == 2)
            for k in pairs(t) do assert(addr(k) == addr(own)) end
            "#
        ));
    };
    let vm = || {
        let vm = TestVm::new("", &[]);
        // SAFETY: a fresh state with the standard libraries open.
        unsafe { install(vm.state()) };
        vm
    };
    with_state(|_| ());
    let first = vm();
    first.check("own_before_sharing = ('patch_next'):rep(1) .. '_key'");
    run(&first);
    run(&vm());
}

/// A template laid down in a VM holding its own copy of one of the template's strings
/// holds that copy, as key and as value.
#[test]
fn a_template_holds_the_vm_own_copies_of_its_strings() {
    let vm = TestVm::new("", &[]);
    let l = vm.state();
    vm.check(
        "own_key = ('patch_template'):rep(1) .. '_key'
         own_value = ('patch_template'):rep(1) .. '_value'",
    );
    // SAFETY: the codecache state under its lock: a table pushed, made a template, popped.
    let tp = with_state(|cl| unsafe {
        ffi::lua_createtable(cl, 0, 2);
        ffi::lua_pushstring(cl, c"patch_template_value".as_ptr());
        ffi::lua_setfield(cl, -2, c"patch_template_key".as_ptr());
        ffi::lua_pushinteger(cl, 7);
        ffi::lua_setfield(cl, -2, c"patch_template_other".as_ptr());
        let tp = lua_maketemplate(cl);
        ffi::lua_settop(cl, 0);
        tp
    });
    assert!(!tp.is_null());
    // SAFETY: `vm` was made with the codecache's seed; the table goes into a global.
    unsafe {
        assert_eq!(lua_pushtemplate(l, tp), 1);
        ffi::lua_setglobal(l, c"t".as_ptr());
    }
    vm.check(
        r#"
        local function addr(s) return string.format('%p', s) end
        local k, v = next(t)
        if k ~= own_key then k, v = next(t, k) end
        assert(addr(k) == addr(own_key) and addr(v) == addr(own_value))
        assert(t[own_key] == own_value and t.patch_template_other == 7)
        "#,
    );
}
