//! The standard libraries of a new VM, laid down from templates.
//!
//! `luaL_openlibs` makes some 200 table entries per VM and looks every name up in the
//! string table first; at thousands of spawns that was a sixth of a spawn's CPU. Here the
//! codecache's state, which opened the libraries once, lends its tables as templates
//! (vendor/lua-src `lua_maketemplate`): a new VM copies each table's node array whole,
//! keys already hashed and shared. A template keeps only values any VM may hold (light C
//! functions, numbers, shared strings); the other slots come out empty and are filled
//! here, in place, so nothing rehashes: the global table and `package.loaded` get the
//! library tables, the string metatable its `__index`, `io` its file handle metatable and
//! default files, and `math` a random generator of its own, seeded by Lua's own
//! `randomseed`. `package` holds per-VM state through and through and is opened the usual
//! way. A VM with another hash seed, or a process where a template could not be made,
//! gets `luaL_openlibs`.

use super::codecache;
use super::lshared::{lua_maketemplate, lua_pushtemplate, Template};
use mlua::ffi::{self, lua_CFunction, lua_State};
use std::ffi::CStr;
use std::ptr;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::LazyLock;

/// Libraries whose tables come whole from a template.
const FROM_TEMPLATE: [&CStr; 8] = [
    c"coroutine",
    c"debug",
    c"io",
    c"math",
    c"os",
    c"string",
    c"table",
    c"utf8",
];

struct Templates {
    loaded: *const Template,
    globals: *const Template,
    libs: Vec<(&'static CStr, *const Template)>,
    string_meta: *const Template,
    random: lua_CFunction,
    randomseed: lua_CFunction,
    random_state: usize,
    file_meta: *const Template,
    file_methods: *const Template,
    std_files: Vec<StdFile>,
}

/// `io.stdin`, `io.stdout`, `io.stderr`: the stream record (a `FILE *` and the close
/// function that refuses to close it) is the same in every VM, so its bytes are copied.
struct StdFile {
    name: &'static CStr,
    registry_key: Option<&'static CStr>,
    stream: Vec<u8>,
}

/// Where `luaopen_io` puts the file handle metatable and the default files.
const FILE_HANDLE: &CStr = c"FILE*";
const STD_FILES: [(&CStr, Option<&CStr>); 3] = [
    (c"stdin", Some(c"_IO_input")),
    (c"stdout", Some(c"_IO_output")),
    (c"stderr", None),
];

// SAFETY: templates are immutable once made and never freed; the C functions are plain
// code pointers.
unsafe impl Send for Templates {}
unsafe impl Sync for Templates {}

static TEMPLATES: LazyLock<Option<Templates>> = LazyLock::new(|| {
    // SAFETY: `with_state` hands over the codecache state under its lock.
    codecache::with_state(|l| unsafe { make_templates(l) })
});

/// Makes a template of the table on the top of `l` and pops it.
unsafe fn take_template(l: *mut lua_State) -> Option<*const Template> {
    // SAFETY: a table is on the top of the caller's stack.
    let tp = unsafe { lua_maketemplate(l) };
    // SAFETY: pops what the caller pushed.
    unsafe { ffi::lua_pop(l, 1) };
    (!tp.is_null()).then_some(tp as *const Template)
}

/// Reads the templates out of `l`, whose standard libraries are open and untouched.
///
/// # Safety
/// `l` is the codecache state, held by the caller.
unsafe fn make_templates(l: *mut lua_State) -> Option<Templates> {
    // SAFETY: stack work on the caller's state; every path restores the stack top.
    unsafe {
        let top = ffi::lua_gettop(l);
        let made = read_templates(l);
        ffi::lua_settop(l, top);
        made
    }
}

unsafe fn read_templates(l: *mut lua_State) -> Option<Templates> {
    // SAFETY: stack work on a state with the standard libraries open.
    unsafe {
        let mut libs = Vec::new();
        for name in FROM_TEMPLATE {
            ffi::lua_getglobal(l, name.as_ptr());
            libs.push((name, take_template(l)?));
        }
        ffi::lua_pushstring(l, c"".as_ptr());
        ffi::lua_getmetatable(l, -1);
        let string_meta = take_template(l)?;
        ffi::lua_getglobal(l, c"math".as_ptr());
        ffi::lua_getfield(l, -1, c"random".as_ptr());
        let random = ffi::lua_tocfunction(l, -1)?;
        if ffi::lua_getupvalue(l, -1, 1).is_null() {
            return None;
        }
        let random_state = ffi::lua_rawlen(l, -1);
        ffi::lua_getfield(l, -3, c"randomseed".as_ptr());
        let randomseed = ffi::lua_tocfunction(l, -1)?;
        ffi::lua_getfield(l, ffi::LUA_REGISTRYINDEX, FILE_HANDLE.as_ptr());
        ffi::lua_getfield(l, -1, c"__index".as_ptr());
        let file_methods = take_template(l)?;
        let file_meta = take_template(l)?;
        let mut std_files = Vec::new();
        ffi::lua_getglobal(l, c"io".as_ptr());
        for (name, registry_key) in STD_FILES {
            if ffi::lua_getfield(l, -1, name.as_ptr()) != ffi::LUA_TUSERDATA {
                return None;
            }
            let p = ffi::lua_touserdata(l, -1) as *const u8;
            let stream = std::slice::from_raw_parts(p, ffi::lua_rawlen(l, -1)).to_vec();
            ffi::lua_pop(l, 1);
            std_files.push(StdFile {
                name,
                registry_key,
                stream,
            });
        }
        ffi::luaL_getsubtable(l, ffi::LUA_REGISTRYINDEX, ffi::LUA_LOADED_TABLE);
        let loaded = take_template(l)?;
        ffi::lua_pushglobaltable(l);
        let globals = take_template(l)?;
        Some(Templates {
            loaded,
            globals,
            libs,
            string_meta,
            random,
            randomseed,
            random_state,
            file_meta,
            file_methods,
            std_files,
        })
    }
}

/// Opens the standard libraries in a fresh VM, as `luaL_openlibs` does.
///
/// # Safety
/// `l` is a fresh, complete state with nothing opened yet.
pub unsafe fn open(l: *mut lua_State) {
    // SAFETY: forwarded. `lua_pushtemplate` pushes nothing when `l`'s hash seed is not
    // the templates' (their hashes would not hold there); then no template is used.
    unsafe {
        match TEMPLATES.as_ref() {
            Some(t) if lua_pushtemplate(l, t.loaded) != 0 => open_from(l, t),
            _ => ffi::luaL_openlibs(l),
        }
    }
}

/// With the template of `package.loaded` pushed, lays down the rest.
unsafe fn open_from(l: *mut lua_State, t: &Templates) {
    // SAFETY: stack work on a fresh state whose seed is the templates'.
    unsafe {
        ffi::lua_setfield(l, ffi::LUA_REGISTRYINDEX, ffi::LUA_LOADED_TABLE);
        lua_pushtemplate(l, t.globals);
        ffi::lua_pushvalue(l, -1);
        ffi::lua_rawseti(l, ffi::LUA_REGISTRYINDEX, ffi::LUA_RIDX_GLOBALS);
        ffi::lua_pushvalue(l, -1);
        ffi::lua_setfield(l, -2, c"_G".as_ptr());
        register(l, c"_G");
        ffi::luaL_requiref(l, c"package".as_ptr(), ffi::luaopen_package, 1);
        ffi::lua_pop(l, 1);
        for &(name, tp) in &t.libs {
            lua_pushtemplate(l, tp);
            match name.to_bytes() {
                b"string" => set_string_metatable(l, t.string_meta),
                b"math" => set_random(l, t),
                b"io" => set_files(l, t),
                _ => {}
            }
            ffi::lua_pushvalue(l, -1);
            ffi::lua_setglobal(l, name.as_ptr());
            register(l, name);
        }
    }
}

/// Pops the library on the top into `package.loaded[name]`.
unsafe fn register(l: *mut lua_State, name: &CStr) {
    // SAFETY: the library table is on the top; the loaded table is the registry's.
    unsafe {
        ffi::luaL_getsubtable(l, ffi::LUA_REGISTRYINDEX, ffi::LUA_LOADED_TABLE);
        ffi::lua_rotate(l, -2, 1);
        ffi::lua_setfield(l, -2, name.as_ptr());
        ffi::lua_pop(l, 1);
    }
}

/// With the string library on the top: the metatable of strings, `__index` = the library.
unsafe fn set_string_metatable(l: *mut lua_State, meta: *const Template) {
    // SAFETY: stack work; the string library is at -1.
    unsafe {
        ffi::lua_pushstring(l, c"".as_ptr());
        lua_pushtemplate(l, meta);
        ffi::lua_pushvalue(l, -3);
        ffi::lua_setfield(l, -2, c"__index".as_ptr());
        ffi::lua_setmetatable(l, -2);
        ffi::lua_pop(l, 1);
    }
}

/// With the io library on the top: the file handle metatable and the default files, as
/// `luaopen_io` makes them.
unsafe fn set_files(l: *mut lua_State, t: &Templates) {
    // SAFETY: stack work; the io library is at -1. Each new userdata gets exactly the
    // bytes of the codecache state's stream of the same name, which hold process-wide
    // pointers only.
    unsafe {
        lua_pushtemplate(l, t.file_meta);
        lua_pushtemplate(l, t.file_methods);
        ffi::lua_setfield(l, -2, c"__index".as_ptr());
        ffi::lua_pushvalue(l, -1);
        ffi::lua_setfield(l, ffi::LUA_REGISTRYINDEX, FILE_HANDLE.as_ptr());
        for file in &t.std_files {
            let p = ffi::lua_newuserdatauv(l, file.stream.len(), 0) as *mut u8;
            ptr::copy_nonoverlapping(file.stream.as_ptr(), p, file.stream.len());
            ffi::lua_pushvalue(l, -2);
            ffi::lua_setmetatable(l, -2);
            if let Some(key) = file.registry_key {
                ffi::lua_pushvalue(l, -1);
                ffi::lua_setfield(l, ffi::LUA_REGISTRYINDEX, key.as_ptr());
            }
            ffi::lua_setfield(l, -3, file.name.as_ptr());
        }
        ffi::lua_pop(l, 1);
    }
}

/// With the math library on the top: `random` and `randomseed` over a new generator state,
/// seeded by calling `randomseed()`. Lua 5.5 seeds from the time in seconds and a stack
/// address, which repeat for VMs a worker makes within one second; `randomseed()` also
/// draws from the old state, so a state that starts out distinct per VM keeps their
/// sequences apart.
unsafe fn set_random(l: *mut lua_State, t: &Templates) {
    // SAFETY: stack work; the math library is at -1 and the functions take the generator
    // state as their one upvalue, as in the codecache state they came from.
    unsafe {
        let state = ffi::lua_newuserdatauv(l, t.random_state, 0) as *mut u8;
        let bytes = std::slice::from_raw_parts_mut(state, t.random_state);
        fill_distinct(bytes, state as u64);
        ffi::lua_pushvalue(l, -1);
        ffi::lua_pushcclosure(l, t.random, 1);
        ffi::lua_setfield(l, -3, c"random".as_ptr());
        ffi::lua_pushcclosure(l, t.randomseed, 1);
        ffi::lua_pushvalue(l, -1);
        ffi::lua_setfield(l, -3, c"randomseed".as_ptr());
        ffi::lua_call(l, 0, 0);
    }
}

/// Fills `bytes` with a splitmix64 stream that differs per call in a process and per
/// process.
fn fill_distinct(bytes: &mut [u8], salt: u64) {
    static CALLS: AtomicU64 = AtomicU64::new(0);
    let mut x = CALLS.fetch_add(1, Ordering::Relaxed) ^ crate::timer::hpc() ^ salt.rotate_left(32);
    for chunk in bytes.chunks_mut(8) {
        x = x.wrapping_add(0x9e37_79b9_7f4a_7c15);
        let mut z = x;
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        z ^= z >> 31;
        chunk.copy_from_slice(&z.to_le_bytes()[..chunk.len()]);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::lua::stack as lua;

    /// Every entry of the global table, of each library and of the string metatable, in
    /// `pairs` order. Light C functions print their address, the same in every VM.
    const DESCRIBE: &str = r#"
        local out = {}
        local function dump(name, t)
            for k, v in pairs(t) do
                local what = type(v)
                if what == "function" and debug.getinfo(v, "S").what == "C"
                    and not debug.getupvalue(v, 1) then
                    what = tostring(v)
                elseif what ~= "table" and what ~= "function" and what ~= "userdata" then
                    what = what .. " " .. tostring(v)
                end
                out[#out + 1] = name .. "." .. tostring(k) .. " = " .. what
            end
        end
        dump("_G", _G)
        local names = {}
        for name in pairs(package.loaded) do names[#names + 1] = name end
        table.sort(names)
        for _, name in ipairs(names) do dump(name, package.loaded[name]) end
        dump("string-meta", getmetatable(""))
        local files = debug.getregistry()["FILE*"]
        dump("file-meta", files)
        dump("file-methods", files.__index)
        assert(getmetatable(io.stdout) == files and io.type(io.stderr) == "file")
        assert(io.input() == io.stdin and io.output() == io.stdout)
        assert(tostring(io.stderr):find("^file %(0x") and io.stderr:write("") == io.stderr)
        local closed, why = io.stdout:close()
        assert(closed == nil and why:find("standard file"))
        assert(getmetatable("").__index == string and _G._G == _G)
        assert(package.loaded._G == _G and package.loaded.string == string)
        assert(("ab"):rep(2) == "abab" and require("table") == table)
        math.randomseed(42)
        out[#out + 1] = "random " .. math.random(1 << 40) .. " " .. math.random()
        collectgarbage()
        return table.concat(out, "\n")
    "#;

    fn run(l: *mut lua_State, code: &str) -> String {
        // SAFETY: a state of this test; the chunk runs protected.
        unsafe {
            let status = ffi::luaL_loadbufferx(
                l,
                code.as_ptr().cast(),
                code.len(),
                c"=describe".as_ptr(),
                std::ptr::null(),
            );
            assert_eq!(status, ffi::LUA_OK);
            let status = ffi::lua_pcall(l, 0, 1, 0);
            let text = String::from_utf8_lossy(lua::to_bytes(l, -1).unwrap_or(b"")).into_owned();
            assert_eq!(status, ffi::LUA_OK, "{text}");
            ffi::lua_pop(l, 1);
            text
        }
    }

    fn vm(from_templates: bool) -> *mut lua_State {
        let l = codecache::new_state();
        assert!(!l.is_null());
        // SAFETY: a fresh state with the process's seed.
        unsafe {
            if from_templates {
                open(l);
            } else {
                ffi::luaL_openlibs(l);
            }
        }
        l
    }

    fn close(l: *mut lua_State) {
        // SAFETY: a state of this test, no longer used.
        unsafe { ffi::lua_close(l) }
    }

    #[test]
    fn templates_give_what_openlibs_gives_in_the_same_order() {
        assert!(TEMPLATES.is_some(), "no templates were made");
        let (genuine, templated) = (vm(false), vm(true));
        let want = run(genuine, DESCRIBE);
        assert!(want.lines().count() > 150, "{want}");
        assert_eq!(run(templated, DESCRIBE), want);
        close(genuine);
        close(templated);
    }

    #[test]
    fn a_vm_with_another_seed_opens_its_libraries_the_usual_way() {
        assert!(TEMPLATES.is_some());
        // SAFETY: a fresh state of this test, with a seed of its own.
        let l = unsafe { ffi::luaL_newstate() };
        assert!(!l.is_null());
        // SAFETY: as above; nothing is opened yet.
        unsafe { open(l) };
        assert!(run(l, DESCRIBE).lines().count() > 150);
        close(l);
    }

    #[test]
    fn each_vm_gets_its_own_random_generator() {
        let (a, b) = (vm(true), vm(true));
        let draw = "return tostring(math.random(1 << 62))";
        assert_ne!(run(a, draw), run(b, draw));
        let seeded = "math.randomseed(7) return tostring(math.random(1 << 62))";
        assert_eq!(run(a, seeded), run(b, seeded));
        close(a);
        close(b);
    }

    #[test]
    fn filled_slots_and_new_keys_behave_as_in_any_table() {
        let l = vm(true);
        let code = r#"
            string.extra, math.pi, os.time = 1, 3, nil
            for i = 1, 100 do table["k" .. i] = i end
            assert(string.extra == 1 and math.pi == 3 and os.time == nil and table.k100 == 100)
            assert(getmetatable("").__index.extra == 1)
            for i = 1, 100 do table["k" .. i] = nil end
            collectgarbage()
            assert(table.k1 == nil and table.concat({"a", "b"}) == "ab")
            return "ok"
        "#;
        assert_eq!(run(l, code), "ok");
        close(l);
    }
}
