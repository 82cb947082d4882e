//! `skynet.codecache`: a process-wide cache of compiled Lua files.
//!
//! Like upstream, every load of a file shares one compiled prototype. The first load of a
//! file compiles it in the cache's own Lua state, then the patched Lua
//! (vendor/lua-src/README.md) turns the prototype tree into read-only shared objects that no
//! collector touches; every later load in any service only allocates a closure for it. The
//! 1000th service of a script neither parses nor undumps anything, and its VM holds no copy
//! of the code, the constants or the debug information. Shared prototypes are never freed:
//! `clear()` only forgets them, since running closures may still point at them.
//!
//! The cache sits behind `loadfile`, `dofile`, the Lua searcher of `require` and snlua's
//! loader, like upstream's. The searcher also remembers where it found each module, so a
//! service's `require` of a cached module touches no file at all. Mode is per VM: `ON`
//! (default) caches, `EXIST` only uses what is cached, `OFF` always reads the file. Only VMs made with [`hash_seed`] can run shared
//! prototypes (short-string hashes must agree); others load normally.

use super::lshared::{
    lua_hashseed, lua_pushsharedproto, lua_sharefixed, lua_sharekeys, lua_shareproto,
};
use super::raise::{arg_bytes, lua_fn, raise, try_push_bytes, Raise};
use super::stack::{self as lua, push_bytes};
use mlua::ffi::{self, lua_State};
use parking_lot::Mutex;
use std::cell::Cell;
use std::collections::HashMap;
use std::ffi::{c_int, c_void, CString};
use std::ptr;
use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::LazyLock;

thread_local! {
    /// Files this thread compiled into the cache and files it loaded into a VM outside
    /// the cache: each one a parse (an undump for a binary chunk). Tests count them.
    static COMPILED: Cell<u64> = const { Cell::new(0) };
    static UNCACHED: Cell<u64> = const { Cell::new(0) };
}

/// (files compiled into the cache, files loaded outside it) by this thread so far.
#[cfg(test)]
fn file_loads() -> (u64, u64) {
    (COMPILED.get(), UNCACHED.get())
}

/// One hash seed for every VM of the process, as upstream: shared prototypes need it.
static SEED: AtomicU32 = AtomicU32::new(0);

/// The string-hash seed every snlua VM is created with.
pub fn hash_seed() -> u32 {
    let seed = SEED.load(Ordering::Relaxed);
    if seed != 0 {
        return seed;
    }
    let fresh = (crate::timer::hpc() as u32 ^ std::process::id().rotate_left(16)) | 1;
    match SEED.compare_exchange(0, fresh, Ordering::Relaxed, Ordering::Relaxed) {
        Ok(_) => fresh,
        Err(existing) => existing,
    }
}

/// The state that compiles cached files (never closed), file name -> shared main
/// prototype, and (package.path, module name) -> the file `require` found there.
struct Cache {
    state: *mut lua_State,
    protos: HashMap<Vec<u8>, *const c_void>,
    found: HashMap<(Vec<u8>, Vec<u8>), Vec<u8>>,
}

// SAFETY: the state is only used under the CACHE lock; shared prototypes are immutable
// and never freed, so their pointers may go to any thread.
unsafe impl Send for Cache {}

static CACHE: LazyLock<Mutex<Cache>> = LazyLock::new(|| {
    Mutex::new(Cache {
        state: new_cache_state(),
        protos: HashMap::new(),
        found: HashMap::new(),
    })
});

unsafe extern "C" fn mimalloc_allocate(
    _ud: *mut c_void,
    p: *mut c_void,
    _osize: usize,
    nsize: usize,
) -> *mut c_void {
    if nsize == 0 {
        // SAFETY: Lua frees only blocks this allocator returned.
        unsafe { libmimalloc_sys::mi_free(p) };
        ptr::null_mut()
    } else {
        // SAFETY: `p` is null or a block from this allocator.
        unsafe { libmimalloc_sys::mi_realloc(p, nsize) }
    }
}

/// Runs `f` on the compiling state, under the cache lock. The state's standard libraries
/// are open and untouched (stdlibs makes its templates from them).
pub(crate) fn with_state<R>(f: impl FnOnce(*mut lua_State) -> R) -> R {
    let cache = CACHE.lock();
    f(cache.state)
}

/// Makes the compiling state if there is none yet. A VM made before it has its own
/// reserved words and metamethod names instead of the shared ones, and then runs a private
/// copy of every shared prototype that holds one of them (vendor/lua-src/README.md).
pub fn make_shared_names() {
    LazyLock::force(&CACHE);
}

/// A bare state on mimalloc with the process's hash seed, so it can run shared prototypes
/// and share its tables (the tests' VMs, sharetable's matrices).
pub(crate) fn new_state() -> *mut lua_State {
    make_shared_names();
    bare_state()
}

fn bare_state() -> *mut lua_State {
    // SAFETY: the allocator needs no userdata.
    unsafe { ffi::lua_newstate(mimalloc_allocate, ptr::null_mut(), hash_seed()) }
}

/// The compiling state. It opens the standard libraries only to share their names, and
/// shares its reserved words and metamethod names: VMs then use those strings instead of
/// making their own copies.
fn new_cache_state() -> *mut lua_State {
    let l = bare_state();
    // SAFETY: a fresh state owned by the cache; package.loaded holds only library tables.
    unsafe {
        ffi::luaL_openlibs(l);
        ffi::luaL_getsubtable(l, ffi::LUA_REGISTRYINDEX, ffi::LUA_LOADED_TABLE);
        lua_sharekeys(l);
        ffi::lua_settop(l, 0);
        lua_sharefixed(l);
    }
    l
}

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

/// Compiles `name` in the cache state and shares it; on failure the error message is
/// returned with the status, to be pushed once the cache is unlocked (a push may raise,
/// or run a finalizer that loads a file).
///
/// # Safety
/// `cache` is locked by the caller.
unsafe fn compile_shared(
    cache: &mut Cache,
    name: &[u8],
) -> Result<*const c_void, (c_int, Vec<u8>)> {
    let cl = cache.state;
    let cname = CString::new(name).unwrap_or_default();
    COMPILED.set(COMPILED.get() + 1);
    // SAFETY: the cache state is used by this thread only while the lock is held, and it
    // runs no protected call: an error in it would abort, never unwind through here.
    unsafe {
        let status = ffi::luaL_loadfilex(cl, cname.as_ptr(), ptr::null());
        if status != ffi::LUA_OK {
            let msg = lua::to_bytes(cl, -1).unwrap_or_default().to_vec();
            ffi::lua_settop(cl, 0);
            return Err((status, msg));
        }
        let proto = lua_shareproto(cl);
        ffi::lua_settop(cl, 0);
        cache.protos.insert(name.to_vec(), proto);
        Ok(proto)
    }
}

/// A failed compile: the status and the error message.
type CompileError = (c_int, Vec<u8>);

/// The shared prototype of `name` for `l`: Some(Ok) to run, Some(Err) when compiling
/// failed, None when `l` must load the file itself.
///
/// # Safety
/// `l` must be a valid Lua state.
unsafe fn shared_proto(
    l: *mut lua_State,
    name: &[u8],
    mode: Option<&[u8]>,
) -> Option<Result<*const c_void, CompileError>> {
    let any_mode = mode.is_none_or(|m| m.contains(&b'b') && m.contains(&b't'));
    // SAFETY: a registry read and a plain field read.
    let (cache_mode, seed) = unsafe { (mode_of(l), lua_hashseed(l)) };
    if cache_mode == Mode::Off || !any_mode || seed != hash_seed() {
        return None;
    }
    let mut cache = CACHE.lock();
    match cache.protos.get(name) {
        Some(&proto) => Some(Ok(proto)),
        // SAFETY: the cache is locked.
        None if cache_mode == Mode::On => Some(unsafe { compile_shared(&mut cache, name) }),
        None => None,
    }
}

/// `luaL_loadfilex` through the cache: pushes the function or an error message and
/// returns the status. `mode` is the load mode (`"t"`, `"b"`, `"bt"`) or None.
///
/// # Safety
/// `l` must be a valid Lua state.
pub unsafe fn load_file_mode(l: *mut lua_State, name: &[u8], mode: Option<&[u8]>) -> c_int {
    // SAFETY: `l` is valid.
    let proto = match unsafe { shared_proto(l, name, mode) } {
        Some(Ok(proto)) => proto,
        // SAFETY: the message is pushed without raising; a memory error is pushed instead.
        Some(Err((status, msg))) => match unsafe { try_push_bytes(l, &msg) } {
            Ok(()) => return status,
            Err(_) => return ffi::LUA_ERRMEM,
        },
        // SAFETY: forwarded.
        None => return unsafe { load_uncached(l, Some(name), mode) },
    };
    // SAFETY: a shared proto runs in `l` because the seeds agree; this frame owns nothing
    // if allocating the closure raises.
    unsafe { lua_pushsharedproto(l, proto) };
    ffi::LUA_OK
}

/// Plain `luaL_loadfilex` of `name` (None: stdin).
///
/// # Safety
/// `l` must be a valid Lua state with three free stack slots.
unsafe fn load_uncached(l: *mut lua_State, name: Option<&[u8]>, mode: Option<&[u8]>) -> c_int {
    UNCACHED.set(UNCACHED.get() + 1);
    // SAFETY: the name and mode go to luaL_loadfilex as Lua strings (NUL-terminated
    // copies, cut at an inner NUL as C reads them), so this frame owns nothing when a
    // push or the load raises a memory error; they are removed from below the result.
    unsafe {
        let mut pushed = 0;
        let mut c_str = |bytes: Option<&[u8]>| match bytes {
            Some(b) => {
                push_bytes(l, b);
                pushed += 1;
                ffi::lua_tolstring(l, -1, ptr::null_mut())
            }
            None => ptr::null(),
        };
        let cname = c_str(name);
        let cmode = c_str(mode);
        let status = ffi::luaL_loadfilex(l, cname, cmode);
        for _ in 0..pushed {
            ffi::lua_remove(l, -2);
        }
        status
    }
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
///
/// # Safety
/// `l` must be a valid Lua state with three free stack slots.
unsafe fn load_arg(l: *mut lua_State, idx: c_int, mode: Option<&[u8]>) -> Result<c_int, Raise> {
    // SAFETY: stack reads; the string stays on the stack during the load.
    unsafe {
        match lua::to_bytes(l, idx).filter(|_| ffi::lua_type(l, idx) == ffi::LUA_TSTRING) {
            Some(name) => Ok(load_file_mode(l, name, mode)),
            None if ffi::lua_isnoneornil(l, idx) != 0 => Ok(load_uncached(l, None, mode)),
            None => Err(Raise::expected(l, idx, ffi::LUA_TSTRING)),
        }
    }
}

unsafe fn loadfile(l: *mut lua_State) -> Result<c_int, Raise> {
    // SAFETY: stack work on a live VM; the mode string stays on the stack.
    unsafe {
        if ffi::lua_isnoneornil(l, 1) == 0 {
            arg_bytes(l, 1)?;
        }
        let mode = if ffi::lua_isnoneornil(l, 2) != 0 {
            None
        } else {
            Some(arg_bytes(l, 2)?)
        };
        let env = ffi::lua_type(l, 3) != ffi::LUA_TNONE;
        let status = load_arg(l, 1, mode)?;
        if status == ffi::LUA_OK {
            if env {
                ffi::lua_pushvalue(l, 3);
                if ffi::lua_setupvalue(l, -2, 1).is_null() {
                    ffi::lua_pop(l, 1);
                }
            }
            Ok(1)
        } else {
            ffi::lua_pushnil(l);
            ffi::lua_insert(l, -2);
            Ok(2)
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

unsafe fn dofile(l: *mut lua_State) -> Result<c_int, Raise> {
    // SAFETY: stack work on a live VM. This frame owns nothing when the chunk raises or
    // yields through lua_callk (which then resumes in `dofile_done`).
    unsafe {
        if ffi::lua_isnoneornil(l, 1) == 0 {
            arg_bytes(l, 1)?;
        }
        ffi::lua_settop(l, 1);
        if load_arg(l, 1, None)? != ffi::LUA_OK {
            return Err(Raise::Top);
        }
        ffi::lua_callk(l, 0, ffi::LUA_MULTRET, 0, Some(dofile_done));
        Ok(dofile_done(l, 0, 0))
    }
}

/// The file `require` found for module `name` along `path` before (mode `ON`).
fn remembered(path: &[u8], name: &[u8]) -> Option<Vec<u8>> {
    CACHE
        .lock()
        .found
        .get(&(path.to_vec(), name.to_vec()))
        .cloned()
}

/// Pushes the file `package.searchpath` finds for the module named at 1 along `package.path`
/// (at 2), or its "no file" message; true when found. Under `ON` a found file is
/// remembered: its code is cached anyway, so later services skip the file probes.
///
/// # Safety
/// `l` must be a valid Lua state, called from `search_lua`.
unsafe fn find_module(l: *mut lua_State) -> Result<bool, Raise> {
    // SAFETY: stack work; the name and path stay on the stack at 1 and 2. Nothing is
    // owned while Lua runs `searchpath` (which may raise): the remembered file is pushed
    // without raising and dropped before, the new entry is made after.
    unsafe {
        let remember = mode_of(l) == Mode::On;
        let path = lua::to_bytes(l, 2).unwrap_or_default();
        let name = lua::to_bytes(l, 1).unwrap_or_default();
        if remember {
            if let Some(file) = remembered(path, name) {
                try_push_bytes(l, &file)?;
                return Ok(true);
            }
        }
        ffi::lua_getfield(l, ffi::lua_upvalueindex(1), c"searchpath".as_ptr());
        ffi::lua_pushvalue(l, 1);
        ffi::lua_pushvalue(l, 2);
        ffi::lua_call(l, 2, 2);
        if ffi::lua_isnil(l, -2) != 0 {
            ffi::lua_remove(l, -2);
            return Ok(false);
        }
        ffi::lua_pop(l, 1);
        if remember {
            let file = lua::to_bytes(l, -1).unwrap_or_default().to_vec();
            CACHE
                .lock()
                .found
                .insert((path.to_vec(), name.to_vec()), file);
        }
        Ok(true)
    }
}

/// `package.searchers[2]` through the cache; upvalue 1 is the `package` table.
unsafe fn search_lua(l: *mut lua_State) -> Result<c_int, Raise> {
    // SAFETY: stack work on a live VM; the error message is built by Lua itself.
    unsafe {
        arg_bytes(l, 1)?;
        ffi::lua_settop(l, 1);
        if ffi::lua_getfield(l, ffi::lua_upvalueindex(1), c"path".as_ptr()) != ffi::LUA_TSTRING {
            return Err(raise!("'package.path' must be a string"));
        }
        if !find_module(l)? {
            return Ok(1);
        }
        let file = ffi::lua_gettop(l);
        if load_arg(l, file, None)? == ffi::LUA_OK {
            ffi::lua_pushvalue(l, file);
            return Ok(2);
        }
        ffi::lua_pushstring(l, c"error loading module '".as_ptr());
        ffi::lua_pushvalue(l, 1);
        ffi::lua_pushstring(l, c"' from file '".as_ptr());
        ffi::lua_pushvalue(l, file);
        ffi::lua_pushstring(l, c"':\n\t".as_ptr());
        ffi::lua_rotate(l, -6, -1);
        ffi::lua_concat(l, 6);
        Err(Raise::Top)
    }
}

unsafe extern "C-unwind" fn clear(_l: *mut lua_State) -> c_int {
    let mut cache = CACHE.lock();
    cache.protos.clear();
    cache.found.clear();
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
        ffi::lua_pushcfunction(l, lua_fn!(loadfile));
        ffi::lua_setglobal(l, c"loadfile".as_ptr());
        ffi::lua_pushcfunction(l, lua_fn!(dofile));
        ffi::lua_setglobal(l, c"dofile".as_ptr());
        if ffi::lua_getglobal(l, c"package".as_ptr()) == ffi::LUA_TTABLE {
            if ffi::lua_getfield(l, -1, c"searchers".as_ptr()) == ffi::LUA_TTABLE {
                ffi::lua_pushvalue(l, -2);
                ffi::lua_pushcclosure(l, lua_fn!(search_lua), 1);
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
    use crate::lua::testvm::TestVm;

    const PRELUDE: &str = "local cache = require 'skynet.codecache'";

    fn vm() -> TestVm {
        let vm = TestVm::new(PRELUDE, &[]);
        // SAFETY: a fresh state with the standard libraries open.
        unsafe { install(vm.state()) };
        vm
    }

    /// A directory of test files, removed when dropped.
    struct ScratchDir(std::path::PathBuf);

    impl ScratchDir {
        fn new(tag: &str) -> ScratchDir {
            let dir = std::env::temp_dir().join(format!("codecache-{tag}-{}", std::process::id()));
            std::fs::create_dir_all(&dir).unwrap();
            ScratchDir(dir)
        }

        fn join(&self, file: &str) -> std::path::PathBuf {
            self.0.join(file)
        }

        fn display(&self) -> std::path::Display<'_> {
            self.0.display()
        }
    }

    /// A scratch directory holding one Lua file with `text`, and that file's path.
    fn one_file(tag: &str, file: &str, text: &str) -> (ScratchDir, String) {
        let dir = ScratchDir::new(tag);
        let path = dir.join(file);
        std::fs::write(&path, text).unwrap();
        (dir, path.display().to_string())
    }

    impl Drop for ScratchDir {
        fn drop(&mut self) {
            let _ = std::fs::remove_dir_all(&self.0);
        }
    }

    fn write(path: &std::path::Path, value: &str) {
        std::fs::write(path, format!("return '{value}'")).unwrap();
    }

    /// Held by tests that call `clear()` and by tests that need the cache to keep
    /// what they put in it.
    static CLEARING: Mutex<()> = Mutex::new(());

    #[test]
    fn cached_code_is_not_read_again_until_cleared() {
        let _serial = CLEARING.lock();
        let dir = ScratchDir::new("test");
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
    }

    #[test]
    fn the_thousandth_vm_neither_parses_nor_undumps() {
        // No clear() may run meanwhile (it would make the next load compile again).
        let _serial = CLEARING.lock();
        let (dir, script) = one_file("many", "svc.lua", "return (...) + 1");
        std::fs::write(dir.join("many_mod.lua"), "return 'module'").unwrap();
        // What a service's VM loads: its loader through load_file (as snlua), its
        // script through loadfile (as loader.lua), and modules through require.
        let start_service = |vm: &TestVm| {
            let l = vm.state();
            // SAFETY: a live state; the loaded chunk is called in protected mode.
            unsafe {
                assert_eq!(load_file(l, &script), ffi::LUA_OK);
                ffi::lua_pushinteger(l, 1);
                assert_eq!(ffi::lua_pcall(l, 1, 1, 0), ffi::LUA_OK);
                assert_eq!(ffi::lua_tointegerx(l, -1, ptr::null_mut()), 2);
                ffi::lua_settop(l, 0);
            }
            vm.check(&format!(
                "assert(loadfile('{script}')(2) == 3)
                 package.path = '{}/?.lua'
                 assert(require 'many_mod' == 'module')",
                dir.display()
            ));
        };
        let (compiled, uncached) = file_loads();
        start_service(&vm());
        assert_eq!(
            file_loads(),
            (compiled + 2, uncached),
            "the first VM compiles the script and the module once each, into the cache"
        );
        for _ in 1..1000 {
            start_service(&vm());
        }
        assert_eq!(
            file_loads(),
            (compiled + 2, uncached),
            "999 more VMs compiled or loaded nothing themselves"
        );
    }

    #[test]
    fn shared_strings_equal_the_vm_own() {
        let (_dir, name) = one_file(
            "str",
            "shared.lua",
            "local t = { eq_key = 1, [string.rep('x', 60)] = 2 }\n\
             return t, function(k) return t[k] end, 'eq_key', function() error('boom') end",
        );
        let check = |vm: &TestVm| {
            vm.check(&format!(
                r#"
                -- Made before the first load shares 'eq_key': then it is this VM's own
                -- copy, and this VM runs a private copy of the file's code made with it.
                local own = ('eq_'):rep(1) .. 'key'
                local t, get, key, boom = loadfile('{name}')()
                assert(t[own] == 1 and get(own) == 1 and get('eq_key') == 1)
                assert(own == key and rawequal(own, key))
                assert(t[('x'):rep(60)] == 2)
                local u = {{}}
                u[own] = 'a'; u[key] = 'b'                -- one key, not two
                local n = 0 for _ in pairs(u) do n = n + 1 end
                assert(n == 1 and u.eq_key == 'b')
                assert(setmetatable({{}}, {{ __index = t }})[own] == 1)
                assert(debug.getinfo(get, 'S').source == '@{name}')
                local ok, err = pcall(boom)
                assert(not ok and err:find('shared.lua:2: boom', 1, true), err)
                assert(load(string.dump(get)))
                "#
            ));
        };
        check(&vm());
        check(&vm());
        // A state with its own hash seed cannot use shared code: it loads the file itself.
        // SAFETY: a fresh state used only here.
        let other = unsafe { ffi::luaL_newstate() };
        // SAFETY: as above; the chunk is loaded and run on `other` only.
        unsafe {
            ffi::luaL_openlibs(other);
            install(other);
            assert_eq!(load_file(other, &name), ffi::LUA_OK);
            assert_eq!(ffi::lua_pcall(other, 0, 1, 0), ffi::LUA_OK);
            ffi::lua_getfield(other, -1, c"eq_key".as_ptr());
            assert_eq!(ffi::lua_tointegerx(other, -1, ptr::null_mut()), 1);
            ffi::lua_close(other);
        }
    }

    #[test]
    fn vms_take_shared_strings_instead_of_copies() {
        let (_dir, name) = one_file(
            "set",
            "names.lua",
            "return 'a_name_only_this_file_has', 'insert'",
        );
        vm().check(&format!("assert(loadfile('{name}'))"));
        // Made after the file was cached: strings this VM builds at run time, and the
        // library names it registered at start, are the shared objects themselves.
        vm().check(&format!(
            r#"
            local constant, insert = loadfile('{name}')()
            local own = ('a_name_only'):rep(1) .. '_this_file_has'
            local function addr(s) return string.format('%p', s) end
            assert(addr(own) == addr(constant))
            local key
            for k in pairs(table) do if k == 'insert' then key = k end end
            assert(addr(key) == addr(insert))
            "#
        ));
    }

    #[test]
    fn vms_share_reserved_words_and_metamethod_names() {
        with_state(|_| ());
        // Made after the cache state: their names are its shared ones, and work as theirs.
        let (a, b) = (vm(), vm());
        let names = "return string.format('%p %p %p', ('whi'):rep(1) .. 'le', \
                     ('__ind'):rep(1) .. 'ex', ('_E'):rep(1) .. 'NV')";
        assert_eq!(a.eval(names), b.eval(names));
        b.check(
            r#"
            local closed
            local mt = { __index = function(_, k) return k .. "!" end,
                         __add = function() return 3 end,
                         __close = function() closed = true end }
            local t = setmetatable({}, mt)
            assert(t.x == "x!" and t + t == 3)
            do local c <close> = t end
            assert(closed)
            local n = 0
            for i = 1, 3 do if i ~= 2 and not false or nil then n = n + i end end
            repeat n = n - 1 until n <= 0
            while n < 2 do n = n + 1 end
            goto done
            ::done::
            local function f(...) return select('#', ...) end
            assert(n == 2 and f(1, nil) == 2 and load("return _ENV")() == _ENV)
            "#,
        );
    }

    #[test]
    fn require_remembers_where_it_found_a_module() {
        let _serial = CLEARING.lock();
        let (dir, file) = one_file("req", "req_mod.lua", "return 'found'");
        let require = format!(
            "package.path = '{}/?.lua'; return require 'req_mod'",
            dir.display()
        );
        vm().check(&format!("assert((function() {require} end)() == 'found')"));
        std::fs::remove_file(&file).unwrap();
        // ON: neither the file probe nor the file is needed again.
        vm().check(&format!("assert((function() {require} end)() == 'found')"));
        // OFF searches the path itself and finds nothing.
        vm().check(&format!(
            "cache.mode 'OFF'
             local ok, err = pcall(function() {require} end)
             assert(not ok and err:find('no file', 1, true), err)"
        ));
    }

    #[test]
    fn threads_load_and_look_up_shared_strings_at_once() {
        // Each thread caches files with hundreds of new constants (so the shared set grows
        // and is replaced while others probe it) and checks, in fresh VMs, that strings
        // built at run time find those constants as table keys.
        let dir = ScratchDir::new("threads");
        let workers: Vec<_> = (0..4)
            .map(|t| {
                let files: Vec<String> = (0..8)
                    .map(|f| {
                        let path = dir.join(&format!("t{t}_f{f}.lua"));
                        let keys: String =
                            (0..300).map(|k| format!("k_{t}_{f}_{k} = {k}, ")).collect();
                        std::fs::write(&path, format!("return {{ {keys} }}")).unwrap();
                        path.display().to_string()
                    })
                    .collect();
                std::thread::spawn(move || {
                    for (f, file) in files.iter().enumerate() {
                        for _ in 0..2 {
                            vm().check(&format!(
                                "local t = loadfile('{file}')()
                                 for k = 0, 299 do
                                   local key = 'k_' .. {t} .. '_' .. {f} .. '_' .. k
                                   assert(t[key] == k, key)
                                 end"
                            ));
                        }
                    }
                })
            })
            .collect();
        for w in workers {
            w.join().unwrap();
        }
    }

    #[test]
    fn syntax_errors_come_back_and_are_not_cached() {
        let (_dir, name) = one_file("bad", "bad.lua", "return +");
        let vm = vm();
        vm.check(&format!(
            "local f, err = loadfile('{name}'); assert(f == nil and err:find('bad.lua:1:', 1, true), err)"
        ));
        std::fs::write(&name, "return 7").unwrap();
        vm.check(&format!("assert(loadfile('{name}')() == 7)"));
    }

    #[test]
    fn bad_mode_and_missing_file() {
        let vm = vm();
        let err = vm.run("cache.mode 'SOMETIMES'").unwrap_err();
        assert!(err.contains("invalid option 'SOMETIMES'"), "{err}");
        vm.check("local f, err = loadfile('/nonexistent/x.lua'); assert(f == nil and err:find('cannot open'))");
    }
}
