//! `skynet.stm`: one writer publishes versions of a message, readers in other services
//! see the newest one.
//!
//! An [`Object`] lives behind an `Arc` shared by its writer and every reader; its slot
//! holds the current [`Version`], itself an `Arc` so that a reader keeps the version it
//! last read alive while the writer publishes newer ones. `copy` hands out one more
//! reference to the object as a light userdata, which `newcopy` takes over: that pointer
//! is the only thing that crosses services. The writer's `__gc` empties the slot, so
//! readers then read `false`.

use crate::lua::raise::{arg_integer, arg_type, lua_fn, Raise};
use crate::lua::stack as lua;
use crate::message::{payload_from, Payload};
use mlua::ffi::{self, lua_State};
use std::ffi::{c_int, c_void};
use std::sync::{Arc, RwLock};

/// One published message, never written once published.
struct Version(Payload);

// SAFETY: a version's bytes are only read after it is published (its `Payload` is Send,
// and nothing mutates it through a shared reference), so sharing it between threads is
// sound.
unsafe impl Sync for Version {}

/// The shared object: the current version, none once the writer is gone.
struct Object {
    slot: RwLock<Option<Arc<Version>>>,
}

impl Object {
    fn current(&self) -> Option<Arc<Version>> {
        match self.slot.read() {
            Ok(slot) => slot.clone(),
            Err(poisoned) => poisoned.into_inner().clone(),
        }
    }

    fn publish(&self, version: Option<Arc<Version>>) {
        let old = match self.slot.write() {
            Ok(mut slot) => std::mem::replace(&mut *slot, version),
            Err(poisoned) => std::mem::replace(&mut *poisoned.into_inner(), version),
        };
        drop(old);
    }
}

/// The writer userdata's block.
struct Writer {
    object: *const Object,
}

/// The reader userdata's block: the object, and the version it read last.
struct Reader {
    object: *const Object,
    last: *const Version,
}

/// The message at `arg`: `ptr, sz` (taken over) or a string (copied).
unsafe fn arg_message(l: *mut lua_State, arg: c_int) -> Result<Version, Raise> {
    // SAFETY: reads of live stack slots.
    unsafe {
        if ffi::lua_isuserdata(l, arg) != 0 {
            let p = ffi::lua_touserdata(l, arg) as *mut u8;
            let sz = arg_integer(l, arg + 1)?;
            // SAFETY: by the module's contract the pointer is a payload buffer of `sz`
            // bytes (skynet.pack's) whose ownership moves here.
            Ok(Version(Payload::from_raw(p, sz.max(0) as usize)))
        } else {
            let bytes = crate::lua::raise::arg_bytes(l, arg)?;
            Ok(Version(Payload::from_raw(payload_from(bytes), bytes.len())))
        }
    }
}

/// The block of the userdata at 1 whose metatable is upvalue 1 (the type's metatable).
unsafe fn arg_self<T>(l: *mut lua_State) -> Result<*mut T, Raise> {
    // SAFETY: stack reads; the metatable comparison proves the block is a `T`.
    unsafe {
        let p = ffi::lua_touserdata(l, 1);
        if p.is_null() || ffi::lua_getmetatable(l, 1) == 0 {
            return Err(Raise::expected(l, 1, ffi::LUA_TUSERDATA));
        }
        let same = ffi::lua_rawequal(l, -1, ffi::lua_upvalueindex(1)) != 0;
        ffi::lua_pop(l, 1);
        if same {
            Ok(p as *mut T)
        } else {
            Err(Raise::expected(l, 1, ffi::LUA_TUSERDATA))
        }
    }
}

/// `new(ptr, sz)` / `new(string)` → writer.
unsafe fn new_writer(l: *mut lua_State) -> Result<c_int, Raise> {
    // SAFETY: stack work on a live state; the version moves into the object before any
    // call that can raise.
    unsafe {
        let version = arg_message(l, 1)?;
        let object = Arc::new(Object {
            slot: RwLock::new(Some(Arc::new(version))),
        });
        let raw = Arc::into_raw(object);
        let block = ffi::lua_newuserdatauv(l, std::mem::size_of::<Writer>(), 0) as *mut Writer;
        block.write(Writer { object: raw });
        ffi::lua_pushvalue(l, ffi::lua_upvalueindex(1));
        ffi::lua_setmetatable(l, -2);
    }
    Ok(1)
}

/// Writer `__gc`: empties the slot and drops the writer's reference.
unsafe extern "C-unwind" fn delete_writer(l: *mut lua_State) -> c_int {
    // SAFETY: Lua calls __gc with the writer userdata; the pointer is cleared so a
    // second call does nothing.
    unsafe {
        let w = ffi::lua_touserdata(l, 1) as *mut Writer;
        if !w.is_null() && !(*w).object.is_null() {
            let object = Arc::from_raw((*w).object);
            (*w).object = std::ptr::null();
            object.publish(None);
        }
    }
    0
}

/// `writer(ptr, sz)` / `writer(string)`: publishes a new version.
unsafe fn update(l: *mut lua_State) -> Result<c_int, Raise> {
    // SAFETY: the writer block holds a live object reference until its __gc.
    unsafe {
        let w = arg_self::<Writer>(l)?;
        let version = arg_message(l, 2)?;
        if let Some(object) = (*w).object.as_ref() {
            object.publish(Some(Arc::new(version)));
        }
    }
    Ok(0)
}

/// `copy(writer)` → a light userdata holding one more reference to the object.
unsafe fn copy(l: *mut lua_State) -> Result<c_int, Raise> {
    // SAFETY: as `update`; the new reference is handed to the pointer pushed.
    unsafe {
        let w = arg_self::<Writer>(l)?;
        let object = (*w).object;
        if object.is_null() {
            return Err(Raise::expected(l, 1, ffi::LUA_TUSERDATA));
        }
        Arc::increment_strong_count(object);
        ffi::lua_pushlightuserdata(l, object as *mut c_void);
    }
    Ok(1)
}

/// `newcopy(ptr)` → reader; takes over the reference `copy` made.
unsafe fn new_reader(l: *mut lua_State) -> Result<c_int, Raise> {
    // SAFETY: by the module's contract the pointer comes from `copy` and is used once.
    unsafe {
        arg_type(l, 1, ffi::LUA_TLIGHTUSERDATA)?;
        let object = ffi::lua_touserdata(l, 1) as *const Object;
        let block = ffi::lua_newuserdatauv(l, std::mem::size_of::<Reader>(), 0) as *mut Reader;
        block.write(Reader {
            object,
            last: std::ptr::null(),
        });
        ffi::lua_pushvalue(l, ffi::lua_upvalueindex(1));
        ffi::lua_setmetatable(l, -2);
    }
    Ok(1)
}

/// Reader `__gc`: drops the object reference and the version read last.
unsafe extern "C-unwind" fn delete_reader(l: *mut lua_State) -> c_int {
    // SAFETY: Lua calls __gc with the reader userdata; both pointers are references
    // this block owns, cleared so a second call does nothing.
    unsafe {
        let r = ffi::lua_touserdata(l, 1) as *mut Reader;
        if r.is_null() {
            return 0;
        }
        if !(*r).last.is_null() {
            drop(Arc::from_raw((*r).last));
            (*r).last = std::ptr::null();
        }
        if !(*r).object.is_null() {
            drop(Arc::from_raw((*r).object));
            (*r).object = std::ptr::null();
        }
    }
    0
}

/// `reader(f [, ud])` → `true, f(msg, sz, ud)...` for a version not read yet, else
/// `false`.
unsafe fn read(l: *mut lua_State) -> Result<c_int, Raise> {
    // SAFETY: the reader block owns its references; the new version is stored in the
    // block before `f` runs, so this frame owns nothing when `f` raises.
    unsafe {
        let r = arg_self::<Reader>(l)?;
        arg_type(l, 2, ffi::LUA_TFUNCTION)?;
        let Some(object) = (*r).object.as_ref() else {
            ffi::lua_pushboolean(l, 0);
            return Ok(1);
        };
        let current = object.current();
        let current_ptr = current.as_ref().map_or(std::ptr::null(), Arc::as_ptr);
        if current_ptr == (*r).last {
            drop(current);
            ffi::lua_pushboolean(l, 0);
            return Ok(1);
        }
        if !(*r).last.is_null() {
            drop(Arc::from_raw((*r).last));
        }
        (*r).last = current.map_or(std::ptr::null(), Arc::into_raw);
        let Some(version) = (*r).last.as_ref() else {
            ffi::lua_pushboolean(l, 0);
            return Ok(1);
        };
        ffi::lua_settop(l, 3);
        ffi::lua_replace(l, 1);
        ffi::lua_settop(l, 2);
        ffi::lua_pushlightuserdata(l, version.0.as_ptr() as *mut c_void);
        ffi::lua_pushinteger(l, version.0.len() as ffi::lua_Integer);
        ffi::lua_pushvalue(l, 1);
        ffi::lua_call(l, 3, ffi::LUA_MULTRET);
        ffi::lua_pushboolean(l, 1);
        ffi::lua_replace(l, 1);
        Ok(ffi::lua_gettop(l))
    }
}

/// Pushes a metatable with `__gc` and `__call` (closures over it, as the constructor).
unsafe fn metatable(l: *mut lua_State, gc: lua::CFunction, call: lua::CFunction) {
    // SAFETY: stack work on a live state.
    unsafe {
        ffi::lua_createtable(l, 0, 2);
        ffi::lua_pushcfunction(l, gc);
        ffi::lua_setfield(l, -2, c"__gc".as_ptr());
        ffi::lua_pushvalue(l, -1);
        ffi::lua_pushcclosure(l, call, 1);
        ffi::lua_setfield(l, -2, c"__call".as_ptr());
    }
}

/// `require "skynet.stm"`.
///
/// # Safety
/// Called by Lua only (a `lua_CFunction`).
pub unsafe extern "C-unwind" fn open(l: *mut lua_State) -> c_int {
    // SAFETY: stack work on a live state.
    unsafe {
        ffi::lua_createtable(l, 0, 3);
        metatable(l, delete_writer, lua_fn!(update));
        ffi::lua_pushvalue(l, -1);
        ffi::lua_pushcclosure(l, lua_fn!(copy), 1);
        ffi::lua_setfield(l, -3, c"copy".as_ptr());
        ffi::lua_pushcclosure(l, lua_fn!(new_writer), 1);
        ffi::lua_setfield(l, -2, c"new".as_ptr());
        metatable(l, delete_reader, lua_fn!(read));
        ffi::lua_pushcclosure(l, lua_fn!(new_reader), 1);
        ffi::lua_setfield(l, -2, c"newcopy".as_ptr());
    }
    1
}
