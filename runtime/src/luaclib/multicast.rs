//! `skynet.multicast.core`: the refcounted packages behind `skynet.multicast` and
//! `multicastd` (others.md §3).
//!
//! A [`Package`] owns one published payload, its size and a reference count. Lua never
//! sees its fields, only two kinds of pointer:
//!
//! * the **cell**: a heap block of exactly 8 bytes holding the package's address
//!   (native-endian). `pack` hands one out; multicastd copies its 8 bytes into a string
//!   (`skynet.tostring(cell, 8)`) and sends that string to every local subscriber, whose
//!   `unpack` reads the address back. So the one payload is shared by all subscribers:
//!   fan-out copies 8 bytes per subscriber, never the message.
//! * the **package** itself: `unpack` and `bind` return it, `close` takes it.
//!
//! Ownership, as upstream's: `pack` takes over the payload; `bind` sets the count to the
//! number of subscribers and frees the cell; every subscriber `close`s once and the last
//! close frees payload and package. `remote` instead gives the payload back to the
//! caller (to send it to another node) and frees package and cell. A count that is
//! still 0 when `close` runs (never bound) frees the package and raises.
//!
//! Pointers are checked where the spec checks them (the cell size, binding twice, a count
//! going below zero); a null pointer, which upstream would dereference, raises instead.

use crate::lua::raise::{arg_integer, lua_fn, raise, Raise};
use crate::lua::stack as lua;
use crate::message::{payload_free, payload_from};
use mlua::ffi::{self, lua_State};
use std::ffi::{c_int, c_void};
use std::sync::atomic::{fence, AtomicI32, Ordering};

/// The size of a cell: one package address.
const CELL_SIZE: usize = std::mem::size_of::<*mut Package>();

/// One published message shared by its local subscribers.
struct Package {
    /// Subscribers that have not closed it yet (0 until `bind`).
    refs: AtomicI32,
    size: u32,
    /// A payload buffer ([`crate::message`]); null once `remote` gave it away.
    data: *mut u8,
}

#[cfg(test)]
thread_local! {
    /// Packages freed on this thread (tests check the last close frees).
    static FREED: std::cell::Cell<usize> = const { std::cell::Cell::new(0) };
}

impl Drop for Package {
    fn drop(&mut self) {
        #[cfg(test)]
        FREED.with(|f| f.set(f.get() + 1));
        // SAFETY: a package owns its payload until `remote` nulls it.
        unsafe { payload_free(self.data) }
    }
}

/// A cell is a `Box` holding the package address, so its bytes are exactly the address.
type Cell = *mut Package;

/// Wraps `data` in a new package and pushes its cell and the cell size.
unsafe fn push_cell(l: *mut lua_State, data: *mut u8, size: u32) -> c_int {
    let package = Box::into_raw(Box::new(Package {
        refs: AtomicI32::new(0),
        size,
        data,
    }));
    let cell: *mut Cell = Box::into_raw(Box::new(package));
    // SAFETY: pushing a light userdata and an integer cannot raise.
    unsafe {
        ffi::lua_pushlightuserdata(l, cell as *mut c_void);
        ffi::lua_pushinteger(l, CELL_SIZE as ffi::lua_Integer);
    }
    2
}

/// The size argument at 2 of `pack`/`packremote`.
unsafe fn arg_size(l: *mut lua_State) -> Result<u32, Raise> {
    // SAFETY: a read of a live stack slot.
    let size = unsafe { arg_integer(l, 2)? };
    // As upstream, the integer is taken as a size_t, so a negative one is too large.
    u32::try_from(size).map_err(|_| raise!("Size should be 32bit integer"))
}

/// `pack(ptr, sz)`: the package takes over the payload.
unsafe fn pack(l: *mut lua_State) -> Result<c_int, Raise> {
    // SAFETY: stack reads, then pushes that cannot raise.
    unsafe {
        let data = ffi::lua_touserdata(l, 1) as *mut u8;
        let size = arg_size(l)?;
        Ok(push_cell(l, data, size))
    }
}

/// `packremote(ptr, sz)`: the package holds a copy of the bytes.
unsafe fn packremote(l: *mut lua_State) -> Result<c_int, Raise> {
    // SAFETY: the caller's buffer holds `size` bytes while the call lasts; a null buffer
    // is read only when it is empty.
    unsafe {
        let data = ffi::lua_touserdata(l, 1) as *const u8;
        let size = arg_size(l)?;
        let bytes = match (data.is_null(), size) {
            (_, 0) => &[][..],
            (true, _) => return Err(raise!("Invalid multicast message (null pointer)")),
            (false, n) => std::slice::from_raw_parts(data, n as usize),
        };
        Ok(push_cell(l, payload_from(bytes), size))
    }
}

/// The cell at 1: the package address it holds.
unsafe fn arg_cell(l: *mut lua_State) -> Result<*mut Cell, Raise> {
    // SAFETY: a read of a live stack slot.
    let cell = unsafe { ffi::lua_touserdata(l, 1) } as *mut Cell;
    if cell.is_null() {
        return Err(raise!("Invalid multicast cell (null pointer)"));
    }
    Ok(cell)
}

/// `unpack(cell, sz)` -> package, data, size.
unsafe fn unpack(l: *mut lua_State) -> Result<c_int, Raise> {
    // SAFETY: a non-null cell of the right size is one `pack` made (or its 8 bytes
    // copied into a message), holding the address of a live package.
    unsafe {
        let sz = arg_integer(l, 2)? as c_int;
        if sz as usize != CELL_SIZE {
            return Err(raise!("Invalid multicast package size {sz}"));
        }
        let package = (arg_cell(l)? as *const Cell).read_unaligned();
        if package.is_null() {
            return Err(raise!("Invalid multicast package (null pointer)"));
        }
        ffi::lua_pushlightuserdata(l, package as *mut c_void);
        ffi::lua_pushlightuserdata(l, (*package).data as *mut c_void);
        ffi::lua_pushinteger(l, (*package).size as ffi::lua_Integer);
    }
    Ok(3)
}

/// `bind(cell, n)`: the package now has `n` references; frees the cell.
unsafe fn bind(l: *mut lua_State) -> Result<c_int, Raise> {
    // SAFETY: a non-null cell is a live one from `pack`, which this call consumes.
    unsafe {
        let refs = arg_integer(l, 2)? as c_int;
        let cell = arg_cell(l)?;
        let package = *cell;
        let bound = (*package)
            .refs
            .compare_exchange(0, refs, Ordering::AcqRel, Ordering::Acquire);
        if bound.is_err() {
            return Err(raise!("Can't bind a multicast package more than once"));
        }
        drop(Box::from_raw(cell));
        ffi::lua_pushlightuserdata(l, package as *mut c_void);
    }
    Ok(1)
}

/// `close(package)`: one subscriber is done; the last one frees it.
unsafe fn close(l: *mut lua_State) -> Result<c_int, Raise> {
    // SAFETY: a package is live until its count reaches 0; only the close that takes it
    // there (or below, for one never bound) frees it, after an acquire fence that orders
    // every other subscriber's reads before the free.
    unsafe {
        let package = ffi::lua_touserdata(l, 1) as *mut Package;
        if package.is_null() {
            return Err(raise!("Invalid multicast package (null pointer)"));
        }
        let left = (*package).refs.fetch_sub(1, Ordering::Release) - 1;
        if left <= 0 {
            fence(Ordering::Acquire);
            drop(Box::from_raw(package));
            if left < 0 {
                return Err(raise!("Invalid multicast package reference {left}"));
            }
        }
    }
    Ok(0)
}

/// `remote(cell)` -> data, size: the caller owns the payload; package and cell are freed.
unsafe fn remote(l: *mut lua_State) -> Result<c_int, Raise> {
    // SAFETY: a non-null cell is a live unbound one from `pack`, which this call
    // consumes; the payload leaves the package before it is dropped.
    unsafe {
        let cell = Box::from_raw(arg_cell(l)?);
        let mut package = Box::from_raw(*cell);
        let data = std::mem::replace(&mut package.data, std::ptr::null_mut());
        ffi::lua_pushlightuserdata(l, data as *mut c_void);
        ffi::lua_pushinteger(l, package.size as ffi::lua_Integer);
    }
    Ok(2)
}

/// `nextid(id)`: the next channel id of this node (the low 8 bits name the node; the top
/// bit is dropped so ids stay positive 32-bit integers).
unsafe fn nextid(l: *mut lua_State) -> Result<c_int, Raise> {
    // SAFETY: a stack read and a push.
    unsafe {
        let id = arg_integer(l, 1)? as u32;
        ffi::lua_pushinteger(l, (id.wrapping_add(256) & 0x7fff_ffff) as ffi::lua_Integer);
    }
    Ok(1)
}

/// `require "skynet.multicast.core"`.
///
/// # Safety
/// Called by Lua only (a `lua_CFunction`).
pub unsafe extern "C-unwind" fn open(l: *mut lua_State) -> c_int {
    // SAFETY: stack work on a live state.
    unsafe {
        lua::new_lib(
            l,
            &[
                (c"pack", lua_fn!(pack)),
                (c"unpack", lua_fn!(unpack)),
                (c"bind", lua_fn!(bind)),
                (c"close", lua_fn!(close)),
                (c"remote", lua_fn!(remote)),
                (c"packremote", lua_fn!(packremote)),
                (c"nextid", lua_fn!(nextid)),
            ],
        )
    };
    1
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::lua::stack::push_bytes;
    use crate::lua::testvm::{TestVm, CHECKS};
    use std::slice;

    /// Test-only globals: `buf(s)` copies a string into a fresh payload, `peek(p, n)`
    /// copies `n` bytes at `p` into a string, `addr(p)` is a pointer's address,
    /// `freed()` counts packages freed so far.
    unsafe extern "C-unwind" fn buf(l: *mut lua_State) -> c_int {
        // SAFETY: called by Lua with a string argument.
        unsafe {
            let p = payload_from(lua::check_bytes(l, 1));
            ffi::lua_pushlightuserdata(l, p as *mut c_void);
        }
        1
    }

    unsafe extern "C-unwind" fn peek(l: *mut lua_State) -> c_int {
        // SAFETY: the tests pass live buffers with their sizes.
        unsafe {
            let p = ffi::lua_touserdata(l, 1) as *const u8;
            let n = ffi::luaL_checkinteger(l, 2) as usize;
            push_bytes(l, slice::from_raw_parts(p, n));
        }
        1
    }

    unsafe extern "C-unwind" fn addr(l: *mut lua_State) -> c_int {
        // SAFETY: called by Lua with a valid state.
        unsafe {
            let p = ffi::lua_touserdata(l, 1);
            ffi::lua_pushinteger(l, p.expose_provenance() as ffi::lua_Integer);
        }
        1
    }

    unsafe extern "C-unwind" fn freed(l: *mut lua_State) -> c_int {
        // SAFETY: one push.
        unsafe { ffi::lua_pushinteger(l, FREED.with(|f| f.get()) as ffi::lua_Integer) };
        1
    }

    unsafe extern "C-unwind" fn trash(l: *mut lua_State) -> c_int {
        // SAFETY: the tests pass each payload they own once.
        unsafe { payload_free(ffi::lua_touserdata(l, 1) as *mut u8) };
        0
    }

    fn vm() -> TestVm {
        TestVm::new(
            CHECKS,
            &[
                (c"buf", buf),
                (c"peek", peek),
                (c"addr", addr),
                (c"freed", freed),
                (c"trash", trash),
            ],
        )
        .with_module(c"mc", open)
    }

    #[test]
    fn cell_bytes_are_the_package_address() {
        vm().check(
            r#"
            local cell, n = mc.pack(buf "hello", 5)
            eq(8, n, 'cell size')
            eq('integer', math.type(n))
            local bytes = peek(cell, 8)
            local package, data, size = mc.unpack(cell, 8)
            eq(hex(string.pack('<I8', addr(package))), hex(bytes), 'cell bytes')
            eq('hello', peek(data, size), 'data')
            eq(5, size)
            -- what a subscriber receives: the 8 bytes, copied into a message of its own
            local copy = buf(bytes)
            local p2, d2, s2 = mc.unpack(copy, 8)
            eq(addr(package), addr(p2), 'package through a copy')
            eq(addr(data), addr(d2), 'data through a copy (not copied itself)')
            eq(5, s2)
            trash(copy)
            eq(addr(package), addr(mc.bind(cell, 1)), 'bind returns the package')
            local before = freed()
            mc.close(package)
            eq(before + 1, freed(), 'freed by the only close')
        "#,
        );
    }

    #[test]
    fn last_close_frees() {
        vm().check(
            r#"
            local cell = mc.pack(buf "abc", 3)
            local package = mc.bind(cell, 3)
            local before = freed()
            mc.close(package)
            mc.close(package)
            eq(before, freed(), 'alive after two of three closes')
            mc.close(package)
            eq(before + 1, freed(), 'freed by the third')
        "#,
        );
    }

    #[test]
    fn packremote_copies() {
        vm().check(
            r#"
            local src = buf "remote bytes"
            local cell, n = mc.packremote(src, 12)
            local _, data, size = mc.unpack(cell, n)
            eq(12, size)
            eq('remote bytes', peek(data, size))
            assert(addr(data) ~= addr(src), 'a copy')
            trash(src)
            local p, sz = mc.remote(cell)
            eq('remote bytes', peek(p, sz), 'remote hands the data back')
            trash(p)
            local empty = mc.packremote(nil, 0)
            local _, _, z = mc.unpack(empty, 8)
            eq(0, z)
            mc.close(mc.bind(empty, 1))
        "#,
        );
    }

    #[test]
    fn upstream_errors() {
        vm().check(
            r#"
            fails('Size should be 32bit integer', mc.pack, nil, 1 << 32)
            fails('Size should be 32bit integer', mc.pack, nil, -1)
            fails('Size should be 32bit integer', mc.packremote, nil, 1 << 33)
            local cell = mc.pack(buf "x", 1)
            fails('Invalid multicast package size 4', mc.unpack, cell, 4)
            fails('Invalid multicast package size 0', mc.unpack, cell, 0)
            local package = mc.unpack(cell, 8)
            -- bound once: a second bind (through a copy of the cell) is refused
            local copy = buf(peek(cell, 8))
            mc.bind(cell, 2)
            fails("Can't bind a multicast package more than once", mc.bind, copy, 2)
            trash(copy)
            mc.close(package)
            mc.close(package)
            -- closed before it was bound: freed, and an error
            local p2 = mc.unpack((mc.pack(buf "y", 1)), 8)
            local before = freed()
            fails('Invalid multicast package reference -1', mc.close, p2)
            eq(before + 1, freed(), 'freed anyway')
        "#,
        );
    }

    #[test]
    fn null_pointers_raise() {
        vm().check(
            r#"
            fails('Invalid multicast cell (null pointer)', mc.unpack, nil, 8)
            fails('Invalid multicast cell (null pointer)', mc.bind, nil, 1)
            fails('Invalid multicast cell (null pointer)', mc.remote, nil)
            fails('Invalid multicast package (null pointer)', mc.close, nil)
            fails('Invalid multicast package (null pointer)', mc.unpack, buf(string.rep('\0', 8)), 8)
            fails('Invalid multicast message (null pointer)', mc.packremote, nil, 3)
            fails('number expected, got no value', mc.unpack, nil)
        "#,
        );
    }

    #[test]
    fn nextid() {
        vm().check(
            r#"
            eq(256 + 3, mc.nextid(3))
            eq(1, mc.nextid(0x7fffff01), 'top bit dropped')
            eq(0x100, mc.nextid(0xffffffff + 1), 'taken as 32 bits')
        "#,
        );
    }
}
