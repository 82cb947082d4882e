//! `skynet.debugchannel`: the string channel between `debug_agent` and the service being
//! debugged, and a `sethook` whose hook can suspend the hooked coroutine (others.md §8).
//!
//! A [`Channel`] is a FIFO of strings shared by two services. `create` makes one and
//! returns its writer object with the channel's address; that address crosses to the
//! target service, which `connect`s the one reader. The address is only a key: every
//! channel is listed in a process-wide registry, so `connect` with an address that is not
//! a live channel raises instead of reading freed memory. A Lua channel object (metatable
//! `debugchannel`) holds a counted reference; `release` or `__gc` drops it, and a reader
//! that lets go makes room for the next one, as upstream's count of two does.
//!
//! `read` never blocks a worker for long: an empty channel sleeps the `timeout` argument
//! in tenths of a second (upstream's unit) and returns nothing.
//!
//! `sethook` is `debug.sethook` with two differences remotedebug relies on: the hook
//! function gets `(event, currentline or nil)`, and when it returns a true value the
//! hooked coroutine yields right there (the debugger's prompt then runs until a step
//! resumes it). Hook functions live in a registry table keyed by thread, with weak keys.

use crate::lua::raise::{
    arg_bytes, arg_integer, arg_number, arg_type, arg_udata, lua_fn, raise, try_push_bytes, Raise,
};
use crate::lua::stack as lua;
use mlua::ffi::{self, lua_State};
use parking_lot::Mutex;
use std::collections::{HashMap, VecDeque};
use std::ffi::{c_int, c_void, CStr};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, OnceLock, Weak};
use std::time::Duration;

/// Registry name of the channel objects' metatable.
const METANAME: &CStr = c"debugchannel";

/// One channel: the strings written and not yet read, and whether a reader is connected.
struct Channel {
    queue: Mutex<VecDeque<Vec<u8>>>,
    reader: AtomicBool,
}

/// Every live channel by address, so an address from Lua is checked before use.
fn registry() -> &'static Mutex<HashMap<usize, Weak<Channel>>> {
    static CHANNELS: OnceLock<Mutex<HashMap<usize, Weak<Channel>>>> = OnceLock::new();
    CHANNELS.get_or_init(Default::default)
}

/// Makes a channel, lists it, and returns it with its address.
fn channel_new() -> (Arc<Channel>, usize) {
    let channel = Arc::new(Channel {
        queue: Mutex::new(VecDeque::new()),
        reader: AtomicBool::new(false),
    });
    let key = Arc::as_ptr(&channel) as usize;
    let mut channels = registry().lock();
    channels.retain(|_, c| c.strong_count() > 0);
    channels.insert(key, Arc::downgrade(&channel));
    (channel, key)
}

/// The live channel at `key`, taken as its one reader.
fn channel_connect(key: usize) -> Result<Arc<Channel>, Raise> {
    let channel = registry().lock().get(&key).and_then(Weak::upgrade);
    let Some(channel) = channel else {
        return Err(raise!("Invalid channel pointer"));
    };
    if channel.reader.swap(true, Ordering::AcqRel) {
        return Err(raise!("new channel failed"));
    }
    Ok(channel)
}

/// The block of a Lua channel object: its reference, until released.
struct ChannelBox {
    channel: Option<Arc<Channel>>,
    reader: bool,
}

impl ChannelBox {
    fn release(&mut self) {
        if let Some(channel) = self.channel.take() {
            if self.reader {
                channel.reader.store(false, Ordering::Release);
            }
        }
    }
}

/// Pushes a new, empty channel object (with its metatable) and returns its block.
unsafe fn push_box(l: *mut lua_State) -> *mut ChannelBox {
    // SAFETY: stack work on a live state; the block is written before anything can
    // collect it, and owns nothing yet if a later allocation raises.
    unsafe {
        let block =
            ffi::lua_newuserdatauv(l, std::mem::size_of::<ChannelBox>(), 0) as *mut ChannelBox;
        block.write(ChannelBox {
            channel: None,
            reader: false,
        });
        if ffi::luaL_newmetatable(l, METANAME.as_ptr()) != 0 {
            lua::new_lib(l, &[(c"read", lua_fn!(read)), (c"write", lua_fn!(write))]);
            ffi::lua_setfield(l, -2, c"__index".as_ptr());
            ffi::lua_pushcfunction(l, release);
            ffi::lua_setfield(l, -2, c"__gc".as_ptr());
        }
        ffi::lua_setmetatable(l, -2);
        block
    }
}

/// The channel of the object at 1.
unsafe fn arg_channel<'a>(l: *mut lua_State) -> Result<&'a Channel, Raise> {
    // SAFETY: a `debugchannel` userdata holds a ChannelBox written by `push_box`, alive
    // while the object is on the stack.
    let block = unsafe { &*(arg_udata(l, 1, METANAME)? as *const ChannelBox) };
    match &block.channel {
        Some(channel) => Ok(channel),
        None => Err(raise!("debugchannel released")),
    }
}

/// `create()` -> writer object, channel address.
unsafe fn create(l: *mut lua_State) -> Result<c_int, Raise> {
    // SAFETY: the object exists (and may raise) before the channel does.
    unsafe {
        let block = push_box(l);
        let (channel, key) = channel_new();
        (*block).channel = Some(channel);
        ffi::lua_pushlightuserdata(l, key as *mut c_void);
    }
    Ok(2)
}

/// `connect(address)` -> reader object.
unsafe fn connect(l: *mut lua_State) -> Result<c_int, Raise> {
    // SAFETY: the object exists (and may raise) before the channel is taken.
    unsafe {
        let key = ffi::lua_touserdata(l, 1) as usize;
        if key == 0 {
            return Err(raise!("Invalid channel pointer"));
        }
        let block = push_box(l);
        *block = ChannelBox {
            channel: Some(channel_connect(key)?),
            reader: true,
        };
    }
    Ok(1)
}

/// `release(obj)` and `__gc`: drops the object's reference (again: nothing).
unsafe extern "C-unwind" fn release(l: *mut lua_State) -> c_int {
    // SAFETY: only a `debugchannel` userdata is taken as a ChannelBox; the
    // release runs no Lua.
    unsafe {
        let block = ffi::luaL_testudata(l, 1, METANAME.as_ptr()) as *mut ChannelBox;
        if !block.is_null() {
            (*block).release();
        }
    }
    0
}

/// `obj:read([timeout])` -> the next string, or nothing after sleeping `timeout` tenths
/// of a second.
unsafe fn read(l: *mut lua_State) -> Result<c_int, Raise> {
    // SAFETY: stack reads; the string is pushed without raising over the owned bytes.
    unsafe {
        let channel = arg_channel(l)?;
        let timeout = match ffi::lua_isnoneornil(l, 2) {
            0 => arg_number(l, 2)?,
            _ => 0.0,
        };
        let next = channel.queue.lock().pop_front();
        match next {
            Some(bytes) => {
                try_push_bytes(l, &bytes)?;
                Ok(1)
            }
            None => {
                // As upstream's `usleep((int)(timeout * 100000))`.
                let micros = (timeout * 100_000.0) as i32;
                if micros > 0 {
                    std::thread::sleep(Duration::from_micros(micros as u64));
                }
                Ok(0)
            }
        }
    }
}

/// `obj:write(str)`.
unsafe fn write(l: *mut lua_State) -> Result<c_int, Raise> {
    // SAFETY: stack reads; the bytes are copied while the string is on the stack.
    unsafe {
        let channel = arg_channel(l)?;
        let bytes = arg_bytes(l, 2)?.to_vec();
        channel.queue.lock().push_back(bytes);
    }
    Ok(0)
}

/// The registry key of the hook table (its address is the key).
static HOOKKEY: u8 = 0;

fn hookkey() -> *const c_void {
    &HOOKKEY as *const u8 as *const c_void
}

/// The hook Lua calls: runs the thread's hook function and yields when it says so.
unsafe extern "C-unwind" fn hook(l: *mut lua_State, ar: *mut ffi::lua_Debug) {
    const NAMES: [&CStr; 5] = [c"call", c"return", c"line", c"count", c"tail call"];
    // SAFETY: Lua calls this with the hooked thread and its event record; this frame owns
    // nothing, so the hook function may raise through it. A yield from a hook returns
    // here and Lua suspends the thread after the hook returns (line and count events).
    unsafe {
        ffi::lua_rawgetp(l, ffi::LUA_REGISTRYINDEX, hookkey());
        ffi::lua_pushthread(l);
        if ffi::lua_rawget(l, -2) != ffi::LUA_TFUNCTION {
            ffi::lua_pop(l, 2);
            return;
        }
        let event = NAMES.get((*ar).event as usize).copied().unwrap_or(c"?");
        ffi::lua_pushstring(l, event.as_ptr());
        if (*ar).currentline >= 0 {
            ffi::lua_pushinteger(l, (*ar).currentline as ffi::lua_Integer);
        } else {
            ffi::lua_pushnil(l);
        }
        ffi::lua_call(l, 2, 1);
        let suspend = ffi::lua_toboolean(l, -1) != 0;
        ffi::lua_pop(l, 2);
        if suspend {
            ffi::lua_yield(l, 0);
        }
    }
}

/// The hook mask of a mask string (letters `c`, `r`, `l`) and a count.
fn mask_of(smask: &[u8], count: c_int) -> c_int {
    let mut mask = 0;
    for (letter, bit) in [
        (b'c', ffi::LUA_MASKCALL),
        (b'r', ffi::LUA_MASKRET),
        (b'l', ffi::LUA_MASKLINE),
    ] {
        if smask.contains(&letter) {
            mask |= bit;
        }
    }
    if count > 0 {
        mask |= ffi::LUA_MASKCOUNT;
    }
    mask
}

/// Leaves the hook table on the stack, making it on first use.
unsafe fn push_hook_table(l: *mut lua_State) {
    // SAFETY: stack work on a live state.
    unsafe {
        if ffi::lua_rawgetp(l, ffi::LUA_REGISTRYINDEX, hookkey()) != ffi::LUA_TNIL {
            return;
        }
        ffi::lua_pop(l, 1);
        ffi::lua_createtable(l, 0, 2);
        ffi::lua_pushvalue(l, -1);
        ffi::lua_rawsetp(l, ffi::LUA_REGISTRYINDEX, hookkey());
        ffi::lua_pushstring(l, c"k".as_ptr());
        ffi::lua_setfield(l, -2, c"__mode".as_ptr());
        ffi::lua_pushvalue(l, -1);
        ffi::lua_setmetatable(l, -2);
    }
}

/// `sethook([co,] f, mask [, count])`; without `f`, turns the thread's hook off.
unsafe fn sethook(l: *mut lua_State) -> Result<c_int, Raise> {
    // SAFETY: argument checks come first and nothing is owned; the rest is stack work.
    unsafe {
        let (co, arg) = match ffi::lua_isthread(l, 1) {
            0 => (l, 0),
            _ => (ffi::lua_tothread(l, 1), 1),
        };
        let (func, mask, count) = if ffi::lua_isnoneornil(l, arg + 1) != 0 {
            ffi::lua_settop(l, arg + 1);
            (None, 0, 0)
        } else {
            let smask = arg_bytes(l, arg + 2)?;
            arg_type(l, arg + 1, ffi::LUA_TFUNCTION)?;
            let count = match ffi::lua_isnoneornil(l, arg + 3) {
                0 => arg_integer(l, arg + 3)? as c_int,
                _ => 0,
            };
            (Some(hook as ffi::lua_Hook), mask_of(smask, count), count)
        };
        push_hook_table(l);
        // The key is the thread argument itself, not a push onto `co`: a coroutine
        // suspended by a hook may have no free slot for it.
        match arg {
            0 => {
                ffi::lua_pushthread(l);
            }
            _ => ffi::lua_pushvalue(l, 1),
        };
        ffi::lua_pushvalue(l, arg + 1);
        ffi::lua_rawset(l, -3);
        ffi::lua_sethook(co, func, mask, count);
    }
    Ok(0)
}

/// `require "skynet.debugchannel"`.
///
/// # Safety
/// Called by Lua only (a `lua_CFunction`).
pub unsafe extern "C-unwind" fn open(l: *mut lua_State) -> c_int {
    // SAFETY: stack work on a live state.
    unsafe {
        lua::new_lib(
            l,
            &[
                (c"create", lua_fn!(create)),
                (c"connect", lua_fn!(connect)),
                (c"release", release),
                (c"sethook", lua_fn!(sethook)),
            ],
        )
    };
    1
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::lua::testvm::{TestVm, CHECKS};

    /// Test-only globals: `addr(p)` is a light userdata's address, `mkptr(i)` the light
    /// userdata at address `i` (how a channel address crosses from one VM to another).
    unsafe extern "C-unwind" fn addr(l: *mut lua_State) -> c_int {
        // SAFETY: called by Lua with a valid state.
        unsafe {
            let p = ffi::lua_touserdata(l, 1);
            ffi::lua_pushinteger(l, p.expose_provenance() as ffi::lua_Integer);
        }
        1
    }

    unsafe extern "C-unwind" fn mkptr(l: *mut lua_State) -> c_int {
        // SAFETY: called by Lua with a valid state; the pointer is only a key.
        unsafe {
            let a = ffi::luaL_checkinteger(l, 1) as usize;
            ffi::lua_pushlightuserdata(l, std::ptr::with_exposed_provenance_mut(a));
        }
        1
    }

    fn vm() -> TestVm {
        TestVm::new(CHECKS, &[(c"addr", addr), (c"mkptr", mkptr)]).with_module(c"dc", open)
    }

    #[test]
    fn strings_cross_between_two_states() {
        let writer = vm();
        let reader = vm();
        let key = writer.eval(
            r#"
            W, key = dc.create()
            eq('userdata', type(W))
            W:write 'first'
            W:write ''
            W:write 'third\0with zero'
            return addr(key)
        "#,
        );
        reader.check(&format!(
            r#"
            R = dc.connect(mkptr({key}))
            eq('first', R:read())
            eq('', R:read())
            eq('third\0with zero', R:read())
            eq(0, select('#', R:read()), 'empty: nothing')
            eq(0, select('#', R:read(0.01)), 'empty after a short sleep: nothing')
            R:write 'back'
        "#
        ));
        writer.check("eq('back', W:read(), 'both ends read and write')");
    }

    #[test]
    fn one_reader_at_a_time() {
        let writer = vm();
        let key = writer.eval("W, key = dc.create() return addr(key)");
        let reader = vm();
        reader.check(&format!(
            r#"
            local R = dc.connect(mkptr({key}))
            fails('new channel failed', dc.connect, mkptr({key}))
            dc.release(R)
            dc.release(R)
            fails('debugchannel released', R.read, R)
            local R2 = dc.connect(mkptr({key}))
            R2 = nil
            collectgarbage()
            dc.connect(mkptr({key}))
        "#
        ));
    }

    #[test]
    fn bad_addresses() {
        let writer = vm();
        let key = writer.eval("local W, key = dc.create() dc.release(W) return addr(key)");
        vm().check(&format!(
            r#"
            fails('Invalid channel pointer', dc.connect, nil)
            fails('Invalid channel pointer', dc.connect, mkptr(0))
            fails('Invalid channel pointer', dc.connect, mkptr(12345678))
            fails('Invalid channel pointer', dc.connect, mkptr({key}))
            local W = dc.create()
            fails('debugchannel expected, got string', W.read, 'x')
            fails('string expected, got no value', W.write, W)
            dc.release({{}})
            dc.release(nil)
        "#
        ));
    }

    #[test]
    fn hook_sees_events_and_suspends() {
        vm().check(
            r#"
            local events = {}
            local co = coroutine.create(function(a)
                local b = a + 1
                local c = b * 2
                return c
            end)
            local lines = 0
            dc.sethook(co, function(event, line)
                events[#events + 1] = event .. ':' .. tostring(line)
                if event == 'line' then
                    lines = lines + 1
                    return lines == 2
                end
            end, 'crl')
            local ok, r = coroutine.resume(co, 1)
            assert(ok, r)
            eq(nil, r, 'suspended by the hook, no values')
            eq('suspended', coroutine.status(co))
            local first = tonumber(events[2]:match 'line:(%d+)')
            eq('line:' .. (first + 1), events[#events], 'suspended at the second line')
            eq('call:nil', events[1])
            dc.sethook(co)
            local ok2, r2 = coroutine.resume(co)
            assert(ok2, r2)
            eq(4, r2, 'runs on to the end after the hook is gone')
            eq('dead', coroutine.status(co))
        "#,
        );
    }

    #[test]
    fn hook_checks_and_count() {
        vm().check(
            r#"
            fails('string expected, got no value', dc.sethook, print)
            fails('function expected, got number', dc.sethook, 1, 'l')
            local n = 0
            local co = coroutine.create(function() for i = 1, 100 do end end)
            dc.sethook(co, function(event) if event == 'count' then n = n + 1 end end, '', 10)
            assert(coroutine.resume(co))
            assert(n > 0, 'count hook ran')
            dc.sethook()
        "#,
        );
    }
}
