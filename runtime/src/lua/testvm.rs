//! A bare Lua state for the unit tests of the native modules: the standard libraries, a
//! few test-only global functions, optionally the module under test as a global, and a
//! fixed Lua prelude that every chunk run in it starts with.

use super::stack::CFunction;
use mlua::ffi::{self, lua_State};
use std::ffi::CStr;
use std::{ptr, slice};

pub(crate) struct TestVm {
    l: *mut lua_State,
    prelude: String,
}

/// Lua checks several test modules share: `hex(s)`, `eq(want, got, what)` and
/// `fails(want_substring, f, ...)`. Put it in front of a module's own prelude.
pub(crate) const CHECKS: &str = r#"
local function hex(s)
  return (s:gsub('.', function(c) return string.format('%02x', c:byte()) end))
end
local function eq(want, got, what)
  if want ~= got then
    error(string.format('%s: want %q got %q', what or '?', tostring(want), tostring(got)), 2)
  end
end
local function fails(want, f, ...)
  local ok, e = pcall(f, ...)
  if ok then error('no error, want ' .. want, 2) end
  if not tostring(e):find(want, 1, true) then
    error(string.format('want error %q got %q', want, tostring(e)), 2)
  end
end
"#;

impl TestVm {
    /// A fresh state with the standard libraries and each `(name, f)` of `globals` set as
    /// a global function; `prelude` is prepended to every chunk given to [`TestVm::run`].
    pub(crate) fn new(prelude: &str, globals: &[(&CStr, CFunction)]) -> TestVm {
        // SAFETY: a fresh state, used only by this test thread.
        unsafe {
            let l = super::codecache::new_state();
            assert!(!l.is_null());
            ffi::luaL_openlibs(l);
            for &(name, f) in globals {
                ffi::lua_pushcfunction(l, f);
                ffi::lua_setglobal(l, name.as_ptr());
            }
            TestVm {
                l,
                prelude: prelude.to_owned(),
            }
        }
    }

    /// Calls `open` and stores the table it returns as the global `name`.
    pub(crate) fn with_module(self, name: &CStr, open: CFunction) -> TestVm {
        // SAFETY: our own state; `open` is a module opener returning one value.
        unsafe {
            ffi::lua_pushcfunction(self.l, open);
            ffi::lua_call(self.l, 0, 1);
            ffi::lua_setglobal(self.l, name.as_ptr());
        }
        self
    }

    /// The raw state, for tests that drive the C API directly.
    pub(crate) fn state(&self) -> *mut lua_State {
        self.l
    }

    /// Runs the prelude followed by `code`; a Lua error becomes `Err(message)`.
    pub(crate) fn run(&self, code: &str) -> Result<(), String> {
        self.run_for(code, 0).map(|_| ())
    }

    /// Runs `code` like [`TestVm::check`] and returns its one result as a string.
    #[track_caller]
    pub(crate) fn eval(&self, code: &str) -> String {
        match self.run_for(code, 1) {
            Ok(v) => v,
            Err(e) => panic!("Lua failed: {e}"),
        }
    }

    /// Runs the prelude and `code` with `results` results (0 or 1); the one result, or the
    /// error message, as a string.
    fn run_for(&self, code: &str, results: i32) -> Result<String, String> {
        let chunk = format!("{}\n{code}", self.prelude);
        let l = self.l;
        // SAFETY: loading and calling in protected mode; nothing escapes the pcall.
        unsafe {
            let top = ffi::lua_gettop(l);
            let mut status = ffi::luaL_loadbufferx(
                l,
                chunk.as_ptr().cast(),
                chunk.len(),
                c"=test".as_ptr(),
                ptr::null(),
            );
            if status == ffi::LUA_OK {
                status = ffi::lua_pcall(l, 0, results, 0);
            }
            let text = if status == ffi::LUA_OK && results == 0 {
                String::new()
            } else {
                let mut len = 0;
                let p = ffi::luaL_tolstring(l, -1, &mut len);
                String::from_utf8_lossy(slice::from_raw_parts(p.cast::<u8>(), len)).into_owned()
            };
            let result = if status == ffi::LUA_OK {
                Ok(text)
            } else {
                Err(text)
            };
            ffi::lua_settop(l, top);
            result
        }
    }

    /// Like [`TestVm::run`], but a Lua error fails the test.
    #[track_caller]
    pub(crate) fn check(&self, code: &str) {
        if let Err(e) = self.run(code) {
            panic!("Lua failed: {e}");
        }
    }
}

impl Drop for TestVm {
    fn drop(&mut self) {
        // SAFETY: the state is ours and no longer used.
        unsafe { ffi::lua_close(self.l) }
    }
}
