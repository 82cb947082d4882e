//! `skynet.codecache`: a process-wide cache of compiled Lua files.
//!
//! Upstream patches `luaL_loadfilex` so every load shares one compiled prototype. Stock
//! Lua cannot share prototypes between VMs, so the cache keeps each file's bytecode
//! (`lua_dump`, debug info kept): the first load of a file parses it, every later load in
//! any service only undumps — the 1000th service of a script never parses its source.
//! The cache sits behind `loadfile`, `dofile`, the Lua searcher of `require` and snlua's
//! loader, like upstream's. Chunks load in Lua 5.5's "fixed buffer" mode, so bytecode,
//! line info and long strings are not copied into each VM but shared from the cached
//! buffer; cached buffers are therefore never freed (`clear` only forgets them). Mode is per VM: `ON` (default) caches, `EXIST` only uses what
//! is cached, `OFF` always reads the file; `clear()` forgets everything.

use super::lua::{self, push_bytes};
use mlua::ffi::{self, lua_State};
use parking_lot::Mutex;
use std::collections::HashMap;
use std::ffi::{c_char, c_int, c_void, CString};
use std::sync::LazyLock;

/// File name -> bytecode. The buffers are leaked on purpose: VMs loaded in fixed mode
/// point into them for as long as they live.
static CACHE: LazyLock<Mutex<HashMap<Vec<u8>, &'static [u8]>>> = LazyLock::new(Default::default);

const MODE_KEY: &std::ffi::CStr = c"skynet.codecache.mode";
const MODES: [&str; 3] = ["ON", "EXIST", "OFF"];

#[derive(PartialEq, Eq, Clone, Copy)]
enum Mode {
    On = 0,
    Exist = 1,
    Off = 2,
}

unsafe fn mode_of(l: *mut lua_State) -> Mode {
    // SAFETY: registry read on a live VM.
    unsafe {
        ffi::lua_getfield(l, ffi::LUA_REGISTRYINDEX, MODE_KEY.as_ptr());
        let m = ffi::lua_tointegerx(l, -1, std::ptr::null_mut());
        ffi::lua_pop(l, 1);
        match m {
            1 => Mode::Exist,
            2 => Mode::Off,
            _ => Mode::On,
        }
    }
}

unsafe extern "C-unwind" fn write_chunk(
    _l: *mut lua_State,
    p: *const c_void,
    sz: usize,
    ud: *mut c_void,
) -> c_int {
    if !p.is_null() && sz > 0 {
        // SAFETY: `ud` is the Vec handed to lua_dump below; `p` points to `sz` bytes.
        unsafe {
            (*(ud as *mut Vec<u8>))
                .extend_from_slice(std::slice::from_raw_parts(p as *const u8, sz))
        };
    }
    0
}

/// Moves `code` into a never-freed buffer aligned for the instruction and line arrays a
/// fixed-mode load points into.
fn leak_aligned(code: Vec<u8>) -> &'static [u8] {
    let words = code.len().div_ceil(8);
    let buf: &'static mut [u64] = Box::leak(vec![0u64; words].into_boxed_slice());
    // SAFETY: `buf` owns `words * 8 >= code.len()` bytes; viewing u64s as bytes is always
    // valid, and the leaked buffer lives for the rest of the process.
    let bytes = unsafe { std::slice::from_raw_parts_mut(buf.as_mut_ptr() as *mut u8, code.len()) };
    bytes.copy_from_slice(&code);
    bytes
}

struct Chunk<'a> {
    bytes: &'a [u8],
    done: bool,
}

unsafe extern "C-unwind" fn read_chunk(
    _l: *mut lua_State,
    ud: *mut c_void,
    size: *mut usize,
) -> *const c_char {
    // SAFETY: `ud` is the Chunk handed to lua_load below.
    let chunk = unsafe { &mut *(ud as *mut Chunk) };
    if chunk.done {
        // SAFETY: `size` is a valid out-pointer from lua_load.
        unsafe { *size = 0 };
        return std::ptr::null();
    }
    chunk.done = true;
    // SAFETY: as above.
    unsafe { *size = chunk.bytes.len() };
    chunk.bytes.as_ptr() as *const c_char
}

/// `luaL_loadfilex` through the cache: pushes the function or an error message and
/// returns the status. `mode` is the load mode (`"t"`, `"b"`, `"bt"`) or None.
///
/// # Safety
/// `l` must be a valid Lua state.
pub unsafe fn load_file_mode(l: *mut lua_State, name: &[u8], mode: Option<&[u8]>) -> c_int {
    let cname = CString::new(name).unwrap_or_default();
    let cmode = mode.map(|m| CString::new(m).unwrap_or_default());
    let mode_ptr = cmode.as_ref().map_or(std::ptr::null(), |m| m.as_ptr());
    let binary_ok = mode.is_none_or(|m| m.contains(&b'b'));
    // SAFETY: registry read.
    let cache_mode = unsafe { mode_of(l) };
    if cache_mode == Mode::Off || !binary_ok {
        // SAFETY: both strings live across the call.
        return unsafe { ffi::luaL_loadfilex(l, cname.as_ptr(), mode_ptr) };
    }
    let cached = CACHE.lock().get(name).copied();
    if let Some(code) = cached {
        let mut chunk = Chunk {
            bytes: code,
            done: false,
        };
        let chunkname = [b"=".as_slice(), name, b"\0"].concat();
        // SAFETY: `chunk` and `chunkname` outlive the call; in fixed mode ("B") the VM
        // keeps pointers into `code`, which is leaked and so lives as long as any VM.
        return unsafe {
            ffi::lua_load(
                l,
                read_chunk,
                &mut chunk as *mut Chunk as *mut c_void,
                chunkname.as_ptr() as *const c_char,
                c"B".as_ptr(),
            )
        };
    }
    // SAFETY: both strings live across the call.
    let status = unsafe { ffi::luaL_loadfilex(l, cname.as_ptr(), mode_ptr) };
    if status == ffi::LUA_OK && cache_mode == Mode::On {
        let mut code = Vec::new();
        // SAFETY: the function just loaded is on top; `code` outlives the call.
        let dumped =
            unsafe { ffi::lua_dump(l, write_chunk, &mut code as *mut Vec<u8> as *mut c_void, 0) };
        if dumped == 0 {
            CACHE
                .lock()
                .entry(name.to_vec())
                .or_insert_with(|| leak_aligned(code));
        }
    }
    status
}

/// [`load_file_mode`] with no mode restriction.
///
/// # Safety
/// `l` must be a valid Lua state.
pub unsafe fn load_file(l: *mut lua_State, name: &str) -> c_int {
    // SAFETY: forwarded.
    unsafe { load_file_mode(l, name.as_bytes(), None) }
}

/// Loads the file named at `idx` (nil: stdin, never cached).
unsafe fn load_arg(l: *mut lua_State, idx: c_int, mode: Option<&[u8]>) -> c_int {
    // SAFETY: stack reads; the string stays on the stack during the load.
    unsafe {
        match lua::to_bytes(l, idx).filter(|_| ffi::lua_type(l, idx) == ffi::LUA_TSTRING) {
            Some(name) => load_file_mode(l, name, mode),
            None if ffi::lua_isnoneornil(l, idx) != 0 => {
                let cmode = mode.map(|m| CString::new(m).unwrap_or_default());
                ffi::luaL_loadfilex(
                    l,
                    std::ptr::null(),
                    cmode.as_ref().map_or(std::ptr::null(), |m| m.as_ptr()),
                )
            }
            None => {
                ffi::luaL_checklstring(l, idx, std::ptr::null_mut());
                ffi::LUA_ERRFILE
            }
        }
    }
}

unsafe extern "C-unwind" fn loadfile(l: *mut lua_State) -> c_int {
    // SAFETY: argument checks raise before anything is owned.
    unsafe {
        if ffi::lua_isnoneornil(l, 1) == 0 {
            ffi::luaL_checklstring(l, 1, std::ptr::null_mut());
        }
        let mode = if ffi::lua_isnoneornil(l, 2) != 0 {
            None
        } else {
            Some(lua::check_bytes(l, 2))
        };
        let env = ffi::lua_type(l, 3) != ffi::LUA_TNONE;
        let status = load_arg(l, 1, mode);
        if status == ffi::LUA_OK {
            if env {
                ffi::lua_pushvalue(l, 3);
                if ffi::lua_setupvalue(l, -2, 1).is_null() {
                    ffi::lua_pop(l, 1);
                }
            }
            1
        } else {
            ffi::lua_pushnil(l);
            ffi::lua_insert(l, -2);
            2
        }
    }
}

unsafe extern "C-unwind" fn dofile_done(
    l: *mut lua_State,
    _status: c_int,
    _ctx: ffi::lua_KContext,
) -> c_int {
    // SAFETY: stack size read.
    unsafe { ffi::lua_gettop(l) - 1 }
}

unsafe extern "C-unwind" fn dofile(l: *mut lua_State) -> c_int {
    // SAFETY: errors propagate with nothing owned; lua_callk lets the chunk yield.
    unsafe {
        if ffi::lua_isnoneornil(l, 1) == 0 {
            ffi::luaL_checklstring(l, 1, std::ptr::null_mut());
        }
        ffi::lua_settop(l, 1);
        if load_arg(l, 1, None) != ffi::LUA_OK {
            lua::raise_top(l);
        }
        ffi::lua_callk(l, 0, ffi::LUA_MULTRET, 0, Some(dofile_done));
        dofile_done(l, 0, 0)
    }
}

/// `package.searchers[2]` through the cache; upvalue 1 is the `package` table.
unsafe extern "C-unwind" fn search_lua(l: *mut lua_State) -> c_int {
    // SAFETY: errors raise with nothing owned (the message is built by Lua itself).
    unsafe {
        ffi::luaL_checklstring(l, 1, std::ptr::null_mut());
        ffi::lua_getfield(l, ffi::lua_upvalueindex(1), c"searchpath".as_ptr());
        ffi::lua_pushvalue(l, 1);
        if ffi::lua_getfield(l, ffi::lua_upvalueindex(1), c"path".as_ptr()) != ffi::LUA_TSTRING {
            ffi::lua_pushstring(l, c"'package.path' must be a string".as_ptr());
            lua::raise_top(l);
        }
        ffi::lua_call(l, 2, 2);
        if ffi::lua_isnil(l, -2) != 0 {
            return 1;
        }
        ffi::lua_pop(l, 1);
        let file = ffi::lua_gettop(l);
        if load_arg(l, file, None) == ffi::LUA_OK {
            ffi::lua_pushvalue(l, file);
            return 2;
        }
        ffi::lua_pushstring(l, c"error loading module '".as_ptr());
        ffi::lua_pushvalue(l, 1);
        ffi::lua_pushstring(l, c"' from file '".as_ptr());
        ffi::lua_pushvalue(l, file);
        ffi::lua_pushstring(l, c"':\n\t".as_ptr());
        ffi::lua_rotate(l, -6, -1);
        ffi::lua_concat(l, 6);
        lua::raise_top(l)
    }
}

unsafe extern "C-unwind" fn clear(_l: *mut lua_State) -> c_int {
    CACHE.lock().clear();
    0
}

unsafe extern "C-unwind" fn mode(l: *mut lua_State) -> c_int {
    // SAFETY: luaL_checkoption raises the standard "invalid option" error itself.
    unsafe {
        if ffi::lua_isnoneornil(l, 1) != 0 {
            push_bytes(l, MODES[mode_of(l) as usize].as_bytes());
            return 1;
        }
        let list = [
            c"ON".as_ptr(),
            c"EXIST".as_ptr(),
            c"OFF".as_ptr(),
            std::ptr::null(),
        ];
        let m = ffi::luaL_checkoption(l, 1, std::ptr::null(), list.as_ptr());
        ffi::lua_pushinteger(l, m as ffi::lua_Integer);
        ffi::lua_setfield(l, ffi::LUA_REGISTRYINDEX, MODE_KEY.as_ptr());
    }
    0
}

/// Replaces `loadfile`, `dofile` and the Lua searcher, and registers the module as
/// `package.loaded["skynet.codecache"]`.
///
/// # Safety
/// `l` must be a valid Lua state with the standard libraries open.
pub unsafe fn install(l: *mut lua_State) {
    // SAFETY: stack work on a live VM.
    unsafe {
        ffi::lua_pushcfunction(l, loadfile);
        ffi::lua_setglobal(l, c"loadfile".as_ptr());
        ffi::lua_pushcfunction(l, dofile);
        ffi::lua_setglobal(l, c"dofile".as_ptr());
        if ffi::lua_getglobal(l, c"package".as_ptr()) == ffi::LUA_TTABLE {
            if ffi::lua_getfield(l, -1, c"searchers".as_ptr()) == ffi::LUA_TTABLE {
                ffi::lua_pushvalue(l, -2);
                ffi::lua_pushcclosure(l, search_lua, 1);
                ffi::lua_rawseti(l, -2, 2);
            }
            ffi::lua_pop(l, 1);
        }
        ffi::lua_pop(l, 1);
        ffi::luaL_getsubtable(l, ffi::LUA_REGISTRYINDEX, ffi::LUA_LOADED_TABLE);
        lua::new_lib(l, &[(c"clear", clear), (c"mode", mode)]);
        ffi::lua_getglobal(l, c"loadfile".as_ptr());
        ffi::lua_setfield(l, -2, c"loadfile".as_ptr());
        ffi::lua_setfield(l, -2, c"skynet.codecache".as_ptr());
        ffi::lua_pop(l, 1);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::luaclib::testvm::TestVm;

    const PRELUDE: &str = "local cache = require 'skynet.codecache'";

    fn vm() -> TestVm {
        let vm = TestVm::new(PRELUDE, &[]);
        // SAFETY: a fresh state with the standard libraries open.
        unsafe { install(vm.state()) };
        vm
    }

    fn write(path: &std::path::Path, value: &str) {
        std::fs::write(path, format!("return '{value}'")).unwrap();
    }

    #[test]
    fn cached_code_is_not_read_again_until_cleared() {
        let dir = std::env::temp_dir().join(format!("codecache-test-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let file = dir.join("m.lua");
        let name = file.display().to_string();
        write(&file, "first");
        let vm = vm();
        let check = |expect: &str| {
            vm.check(&format!(
                "assert(loadfile('{name}')() == '{expect}', loadfile('{name}')())"
            ));
        };
        check("first");
        write(&file, "second");
        // ON (the default): every VM gets the compiled copy, the file is not read.
        check("first");
        let other = self::vm();
        other.check(&format!("assert(dofile('{name}') == 'first')"));
        other.check(&format!(
            "package.path = '{}/?.lua'; assert(require 'm' == 'first')",
            dir.display()
        ));
        // OFF reads the file; EXIST uses what is cached.
        vm.check("cache.mode 'OFF'; assert(cache.mode() == 'OFF')");
        check("second");
        vm.check("cache.mode 'EXIST'");
        check("first");
        // clear() forgets: the next load reads the file again and caches that.
        vm.check("cache.clear(); cache.mode 'ON'");
        check("second");
        write(&file, "third");
        check("second");
        let _ = std::fs::remove_dir_all(&dir);
    }

    #[test]
    fn bad_mode_and_missing_file() {
        let vm = vm();
        let err = vm.run("cache.mode 'SOMETIMES'").unwrap_err();
        assert!(err.contains("invalid option 'SOMETIMES'"), "{err}");
        vm.check("local f, err = loadfile('/nonexistent/x.lua'); assert(f == nil and err:find('cannot open'))");
    }
}
