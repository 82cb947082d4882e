//! `skynet.netpack`: packets framed as a 2-byte big-endian length followed by up to
//! 65535 payload bytes, cut out of a connection's DATA events (socket.md §7).
//!
//! `filter(queue, msg, sz)` reads one PTYPE_SOCKET payload. A read holding exactly one
//! whole packet comes straight back as `"data", fd, ptr, size`; a read holding more goes
//! to the queue and filter answers `"more"` (the caller drains it with `pop`). Bytes that
//! stop mid-packet (even mid-header) wait in the queue, per connection, for the next
//! read; CLOSE and ERROR forget them.
//!
//! The queue is a full userdata holding a pointer to a Rust [`Queue`]: a FIFO of whole
//! packets and a map from fd to the packet in progress. filter makes one only when it has
//! something to keep, and then returns it first; it never needs replacing, but callers
//! keep filter's first result anyway, as upstream requires. Its `__gc` frees whatever is
//! left; `clear` does the same earlier.
//!
//! Packet buffers are payloads ([`crate::message`]): Lua receives them as light userdata
//! and passes them on (`socketdriver.send`, `netpack.tostring`, `skynet.trash`). The DATA
//! buffer of the socket message is always freed by filter.

use crate::lua::raise::{arg_bytes, arg_integer, lua_fn, raise, Raise};
use crate::lua::stack::{self as lua, push_bytes};
use crate::message::{payload_alloc, payload_free, Payload};
use crate::socket::record as sm;
use mlua::ffi::{self, lua_State};
use std::collections::{HashMap, VecDeque};
use std::ffi::{c_int, CStr};
use std::ptr;

/// Registry name of the queue metatable.
const QUEUE_META: &CStr = c"skynet.netpack.queue";

/// Largest payload a 2-byte header can announce.
pub const MAX_PACKET: usize = 0xffff;

/// Where a connection stands in its byte stream.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Cursor {
    /// Between packets.
    Idle,
    /// Only the high byte of a header has arrived.
    Header(u8),
    /// A header announced `size` bytes; `filled` of them have arrived.
    Body { size: usize, filled: usize },
}

/// What framing finds in a read, in order.
#[derive(Debug, PartialEq, Eq)]
enum Step<'a> {
    /// A header announced a packet of this size whose body is not all here.
    Start(usize),
    /// More bytes of the packet in progress.
    Extend(&'a [u8]),
    /// The packet in progress is complete.
    Finish,
    /// A whole packet lying inside this read.
    Whole(&'a [u8]),
}

/// Walks `bytes` as the continuation of a stream standing at `at`, reporting each step;
/// returns where the stream stands afterwards. Pure: both the dry run ([`plan`]) and the
/// real one ([`feed`]) go through here, so they cannot disagree.
fn frame<'a>(mut at: Cursor, mut rest: &'a [u8], mut step: impl FnMut(Step<'a>)) -> Cursor {
    loop {
        match at {
            Cursor::Idle => match *rest {
                [] => return Cursor::Idle,
                [hi] => return Cursor::Header(hi),
                [hi, lo, ref tail @ ..] => {
                    let size = u16::from_be_bytes([hi, lo]) as usize;
                    if tail.len() >= size {
                        let (body, after) = tail.split_at(size);
                        step(Step::Whole(body));
                        rest = after;
                    } else {
                        step(Step::Start(size));
                        step(Step::Extend(tail));
                        return Cursor::Body {
                            size,
                            filled: tail.len(),
                        };
                    }
                }
            },
            Cursor::Header(hi) => match rest.split_first() {
                None => return at,
                Some((&lo, tail)) => {
                    let size = u16::from_be_bytes([hi, lo]) as usize;
                    step(Step::Start(size));
                    at = Cursor::Body { size, filled: 0 };
                    rest = tail;
                }
            },
            Cursor::Body { size, filled } => {
                let need = size.saturating_sub(filled);
                if rest.len() >= need {
                    let (body, after) = rest.split_at(need);
                    step(Step::Extend(body));
                    step(Step::Finish);
                    at = Cursor::Idle;
                    rest = after;
                } else {
                    step(Step::Extend(rest));
                    return Cursor::Body {
                        size,
                        filled: filled + rest.len(),
                    };
                }
            }
        }
    }
}

/// What filter answers for a DATA event.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Outcome {
    /// No complete packet: nothing after the queue.
    Nothing,
    /// Exactly one complete packet and no bytes left over: `"data", fd, ptr, size`.
    Data,
    /// Complete packets queued (and maybe a partial one kept): `"more"`.
    More,
}

/// Dry run: what a read will produce, and whether a queue must hold something after it.
fn plan(at: Cursor, bytes: &[u8]) -> (Outcome, bool) {
    let mut packets = 0usize;
    let end = frame(at, bytes, |s| {
        if matches!(s, Step::Whole(_) | Step::Finish) {
            packets += 1;
        }
    });
    match (packets, end) {
        (0, Cursor::Idle) => (Outcome::Nothing, false),
        (0, _) => (Outcome::Nothing, true),
        (1, Cursor::Idle) => (Outcome::Data, false),
        _ => (Outcome::More, true),
    }
}

/// A complete packet waiting for `pop`.
struct Packet {
    fd: i32,
    data: Payload,
}

/// A connection's packet in progress.
struct Partial {
    at: Cursor,
    /// The body bytes received so far (`at` is `Body { filled: body.len(), .. }` or
    /// `Header`, with `body` empty).
    body: Vec<u8>,
}

/// The userdata's contents.
#[derive(Default)]
pub struct Queue {
    ready: VecDeque<Packet>,
    partial: HashMap<i32, Partial>,
}

impl Queue {
    fn cursor(&self, fd: i32) -> Cursor {
        self.partial.get(&fd).map_or(Cursor::Idle, |p| p.at)
    }

    fn clear(&mut self) {
        self.ready.clear();
        self.partial.clear();
    }
}

#[cfg(test)]
thread_local! {
    /// Queues dropped on this thread (tests check that `__gc` frees them).
    static DROPPED: std::cell::Cell<usize> = const { std::cell::Cell::new(0) };
}

#[cfg(test)]
impl Drop for Queue {
    fn drop(&mut self) {
        DROPPED.with(|d| d.set(d.get() + 1));
    }
}

/// Real run of a read planned as `outcome`: queues packets and the leftover partial, and
/// returns the packet itself for [`Outcome::Data`]. `queue` must be present whenever
/// [`plan`] said one is needed.
fn feed(mut queue: Option<&mut Queue>, fd: i32, bytes: &[u8], outcome: Outcome) -> Option<Payload> {
    let (at, mut body) = match queue.as_deref_mut().and_then(|q| q.partial.remove(&fd)) {
        Some(p) => (p.at, p.body),
        None => (Cursor::Idle, Vec::new()),
    };
    let mut single = None;
    let end = frame(at, bytes, |step| {
        let packet = match step {
            Step::Start(size) => {
                body.clear();
                body.reserve_exact(size);
                return;
            }
            Step::Extend(b) => {
                body.extend_from_slice(b);
                return;
            }
            Step::Finish => {
                let packet = Payload::copy_of(&body);
                body.clear();
                packet
            }
            Step::Whole(b) => Payload::copy_of(b),
        };
        if outcome == Outcome::Data && single.is_none() {
            single = Some(packet);
        } else if let Some(q) = queue.as_deref_mut() {
            q.ready.push_back(Packet { fd, data: packet });
        }
    });
    if end != Cursor::Idle {
        if let Some(q) = queue {
            q.partial.insert(fd, Partial { at: end, body });
        }
    }
    single
}

/// The queue at `idx`, if it is one of ours and not yet collected.
unsafe fn queue_at<'a>(l: *mut lua_State, idx: c_int) -> Option<&'a mut Queue> {
    // SAFETY: luaL_testudata only returns userdata carrying our metatable, whose block
    // holds a pointer from Box::into_raw (or null after __gc). Lua keeps the block alive
    // while the value is on the stack, and no other reference to the Queue exists during
    // one native call.
    unsafe {
        let slot = ffi::luaL_testudata(l, idx, QUEUE_META.as_ptr()).cast::<*mut Queue>();
        if slot.is_null() {
            None
        } else {
            (*slot).as_mut()
        }
    }
}

/// Creates an empty queue and puts it in stack slot 1 (the caller's first result).
unsafe fn new_queue<'a>(l: *mut lua_State) -> &'a mut Queue {
    // SAFETY: the userdata is allocated (the only call here that may raise) before any
    // Rust value exists; its block is big and aligned enough for a pointer, and it holds
    // null until the box is stored, so an early __gc has nothing to free.
    unsafe {
        let slot =
            ffi::lua_newuserdatauv(l, std::mem::size_of::<*mut Queue>(), 0).cast::<*mut Queue>();
        slot.write(ptr::null_mut());
        ffi::luaL_setmetatable(l, QUEUE_META.as_ptr());
        let q = Box::into_raw(Box::<Queue>::default());
        slot.write(q);
        ffi::lua_replace(l, 1);
        &mut *q
    }
}

unsafe extern "C-unwind" fn queue_gc(l: *mut lua_State) -> c_int {
    // SAFETY: __gc of our userdata; the pointer is swapped for null so it is freed once.
    unsafe {
        let slot = ffi::luaL_testudata(l, 1, QUEUE_META.as_ptr()).cast::<*mut Queue>();
        if !slot.is_null() {
            let q = slot.replace(ptr::null_mut());
            if !q.is_null() {
                drop(Box::from_raw(q));
            }
        }
    }
    0
}

/// Pushes an event name (a short literal: interned, nothing Rust-owned is alive).
unsafe fn push_name(l: *mut lua_State, name: &CStr) {
    // SAFETY: one push on a live state.
    unsafe { ffi::lua_pushstring(l, name.as_ptr()) };
}

/// DATA: frames `size` bytes at `buffer` for connection `fd`, then frees the buffer.
/// Slot 1 holds the queue (or nil).
unsafe fn filter_data(l: *mut lua_State, fd: i32, buffer: *mut u8, size: i32) -> c_int {
    // SAFETY: the DATA buffer of a socket message holds `ud` bytes and now belongs to us;
    // it is read before it is freed, and freed exactly once. Stack work on a live state;
    // only `new_queue` may raise, and it runs before anything Rust-owned exists.
    unsafe {
        let bytes: &[u8] = if buffer.is_null() || size <= 0 {
            &[]
        } else {
            std::slice::from_raw_parts(buffer, size as usize)
        };
        let at = queue_at(l, 1).map_or(Cursor::Idle, |q| q.cursor(fd));
        let (outcome, needs_queue) = plan(at, bytes);
        let queue = match queue_at(l, 1) {
            Some(q) => Some(q),
            None if needs_queue => Some(new_queue(l)),
            None => None,
        };
        let single = feed(queue, fd, bytes, outcome).map(|p| (p.len(), p.into_raw()));
        payload_free(buffer);
        match (outcome, single) {
            (Outcome::Data, Some((n, p))) => {
                push_name(l, c"data");
                ffi::lua_pushinteger(l, fd as ffi::lua_Integer);
                ffi::lua_pushlightuserdata(l, p.cast());
                ffi::lua_pushinteger(l, n as ffi::lua_Integer);
                5
            }
            (Outcome::More, _) => {
                push_name(l, c"more");
                2
            }
            _ => 1,
        }
    }
}

/// `filter(queue, msg, sz)`.
unsafe fn filter(l: *mut lua_State) -> Result<c_int, Raise> {
    // SAFETY: `msg, sz` is a PTYPE_SOCKET payload (the dispatch contract of the "socket"
    // protocol); then stack work.
    unsafe {
        let msg = ffi::lua_touserdata(l, 2) as *const u8;
        let sz = arg_integer(l, 3)? as i32;
        if msg.is_null() {
            return Err(Raise::Type(2, c"userdata"));
        }
        ffi::lua_settop(l, 1);
        let payload = std::slice::from_raw_parts(msg, sz.max(0) as usize);
        let Some(r) = sm::decode(payload) else {
            return Ok(1);
        };
        let id = r.id as ffi::lua_Integer;
        Ok(match r.kind {
            sm::DATA => filter_data(l, r.id, r.buffer, r.ud),
            sm::CONNECT => {
                push_name(l, c"init");
                ffi::lua_pushinteger(l, id);
                push_bytes(l, r.text);
                ffi::lua_pushinteger(l, r.ud as ffi::lua_Integer);
                5
            }
            sm::CLOSE | sm::ERROR => {
                if let Some(q) = queue_at(l, 1) {
                    q.partial.remove(&r.id);
                }
                if r.kind == sm::CLOSE {
                    push_name(l, c"close");
                    ffi::lua_pushinteger(l, id);
                    3
                } else {
                    push_name(l, c"error");
                    ffi::lua_pushinteger(l, id);
                    push_bytes(l, r.text);
                    4
                }
            }
            sm::ACCEPT => {
                push_name(l, c"open");
                ffi::lua_pushinteger(l, r.ud as ffi::lua_Integer);
                push_bytes(l, r.text);
                4
            }
            sm::WARNING => {
                push_name(l, c"warning");
                ffi::lua_pushinteger(l, id);
                ffi::lua_pushinteger(l, r.ud as ffi::lua_Integer);
                4
            }
            sm::UDP => {
                // A gate has no use for datagrams; free the buffer rather than leak it.
                payload_free(r.buffer);
                1
            }
            _ => 1,
        })
    }
}

/// `pop(queue)`: `fd, ptr, size` of the oldest packet, or nothing.
unsafe extern "C-unwind" fn pop(l: *mut lua_State) -> c_int {
    // SAFETY: stack work on a live state; the packet's buffer is released to Lua (raw)
    // before the pushes.
    unsafe {
        let Some(packet) = queue_at(l, 1).and_then(|q| q.ready.pop_front()) else {
            return 0;
        };
        let Packet { fd, data } = packet;
        let size = data.len();
        let p = data.into_raw();
        ffi::lua_pushinteger(l, fd as ffi::lua_Integer);
        ffi::lua_pushlightuserdata(l, p.cast());
        ffi::lua_pushinteger(l, size as ffi::lua_Integer);
    }
    3
}

/// `pack(str)` / `pack(ptr, size)`: a new buffer with the 2-byte header, and its size.
unsafe fn pack(l: *mut lua_State) -> Result<c_int, Raise> {
    // SAFETY: a pointer argument addresses `size` readable bytes (the caller's contract,
    // as upstream); the new buffer has room for the header and the payload, and goes to
    // Lua as a light userdata (pushing one allocates nothing).
    unsafe {
        let (src, len) = if ffi::lua_isuserdata(l, 1) != 0 {
            let p = ffi::lua_touserdata(l, 1) as *const u8;
            (p, arg_integer(l, 2)? as usize)
        } else {
            let s = arg_bytes(l, 1)?;
            (s.as_ptr(), s.len())
        };
        if len > MAX_PACKET {
            return Err(raise!("Invalid size (too long) of data : {}", len as i32));
        }
        if src.is_null() && len > 0 {
            return Err(Raise::arg(1, format_args!("null pointer")));
        }
        let out = payload_alloc(len + 2);
        let header = (len as u16).to_be_bytes();
        ptr::copy_nonoverlapping(header.as_ptr(), out, 2);
        if len > 0 {
            ptr::copy_nonoverlapping(src, out.add(2), len);
        }
        ffi::lua_pushlightuserdata(l, out.cast());
        ffi::lua_pushinteger(l, (len + 2) as ffi::lua_Integer);
    }
    Ok(2)
}

/// `tostring(ptr, size)`: the bytes as a string; frees `ptr`.
unsafe extern "C-unwind" fn tostring(l: *mut lua_State) -> c_int {
    // SAFETY: the size check raises before anything is owned; a light userdata here is a
    // payload of at least `size` bytes handed over by the caller (as upstream). A full
    // userdata is Lua's memory: it is copied but never freed.
    unsafe {
        let p = ffi::lua_touserdata(l, 1) as *mut u8;
        let size = ffi::luaL_checkinteger(l, 2) as i32;
        if p.is_null() {
            push_bytes(l, b"");
            return 1;
        }
        push_bytes(l, std::slice::from_raw_parts(p, size.max(0) as usize));
        if ffi::lua_type(l, 1) == ffi::LUA_TLIGHTUSERDATA {
            payload_free(p);
        }
    }
    1
}

/// `clear(queue)`: frees every queued packet and partial packet.
unsafe extern "C-unwind" fn clear(l: *mut lua_State) -> c_int {
    // SAFETY: see queue_at.
    if let Some(q) = unsafe { queue_at(l, 1) } {
        q.clear();
    }
    0
}

/// `require "skynet.netpack"`.
///
/// # Safety
/// Called by Lua only (a `lua_CFunction`).
pub unsafe extern "C-unwind" fn open(l: *mut lua_State) -> c_int {
    // SAFETY: stack work on a live state.
    unsafe {
        if ffi::luaL_newmetatable(l, QUEUE_META.as_ptr()) != 0 {
            ffi::lua_pushcfunction(l, queue_gc);
            ffi::lua_setfield(l, -2, c"__gc".as_ptr());
        }
        ffi::lua_pop(l, 1);
        lua::new_lib(
            l,
            &[
                (c"pop", pop),
                (c"pack", lua_fn!(pack)),
                (c"clear", clear),
                (c"tostring", tostring),
                (c"filter", lua_fn!(filter)),
            ],
        );
    }
    1
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::lua::testvm::TestVm;
    use crate::message::payload_from;
    use std::slice;

    // ---- framing, without Lua ----

    /// Splits `stream` at `cuts` and runs every read through plan + feed, collecting
    /// what filter would hand out (directly or through the queue).
    fn run_reads(reads: &[&[u8]]) -> (Vec<Vec<u8>>, Vec<Outcome>, Queue) {
        let mut q = Queue::default();
        let mut got = Vec::new();
        let mut outcomes = Vec::new();
        for bytes in reads {
            let (outcome, needs) = plan(q.cursor(9), bytes);
            assert!(needs || outcome == Outcome::Data || q.cursor(9) == Cursor::Idle);
            let single = feed(Some(&mut q), 9, bytes, outcome);
            assert_eq!(single.is_some(), outcome == Outcome::Data);
            if let Some(p) = single {
                got.push(p.bytes().to_vec());
            }
            while let Some(pk) = q.ready.pop_front() {
                got.push(pk.data.bytes().to_vec());
            }
            outcomes.push(outcome);
        }
        (got, outcomes, q)
    }

    fn framed(payload: &[u8]) -> Vec<u8> {
        let mut v = (payload.len() as u16).to_be_bytes().to_vec();
        v.extend_from_slice(payload);
        v
    }

    #[test]
    fn frame_steps() {
        let mut steps = Vec::new();
        let end = frame(Cursor::Idle, b"\x00\x02hi\x00\x03ab", |s| {
            steps.push(format!("{s:?}"))
        });
        assert_eq!(end, Cursor::Body { size: 3, filled: 2 });
        assert_eq!(steps, ["Whole([104, 105])", "Start(3)", "Extend([97, 98])"]);
        let mut steps = Vec::new();
        let end = frame(end, b"c\x00", |s| steps.push(format!("{s:?}")));
        assert_eq!(end, Cursor::Header(0));
        assert_eq!(steps, ["Extend([99])", "Finish"]);
        assert_eq!(frame(Cursor::Header(0), b"\x00", |_| ()), Cursor::Idle);
    }

    #[test]
    fn plan_outcomes() {
        assert_eq!(plan(Cursor::Idle, b""), (Outcome::Nothing, false));
        assert_eq!(plan(Cursor::Idle, b"\x00"), (Outcome::Nothing, true));
        assert_eq!(plan(Cursor::Idle, b"\x00\x01a"), (Outcome::Data, false));
        assert_eq!(plan(Cursor::Idle, b"\x00\x01a\x00"), (Outcome::More, true));
        assert_eq!(
            plan(Cursor::Idle, b"\x00\x00\x00\x00"),
            (Outcome::More, true)
        );
        assert_eq!(plan(Cursor::Header(0), b"\x00"), (Outcome::Data, false));
        assert_eq!(
            plan(Cursor::Body { size: 2, filled: 1 }, b"x"),
            (Outcome::Data, false)
        );
    }

    /// A tiny deterministic generator (xorshift), so failures reproduce.
    struct Rng(u64);
    impl Rng {
        fn next(&mut self) -> u64 {
            self.0 ^= self.0 << 13;
            self.0 ^= self.0 >> 7;
            self.0 ^= self.0 << 17;
            self.0
        }
        fn below(&mut self, n: usize) -> usize {
            (self.next() % n as u64) as usize
        }
    }

    #[test]
    fn random_splits_rebuild_the_packets() {
        let mut rng = Rng(0x9e37_79b9_7f4a_7c15);
        for _ in 0..300 {
            let packets: Vec<Vec<u8>> = (0..rng.below(8) + 1)
                .map(|_| {
                    let n = match rng.below(10) {
                        0 => 0,
                        1 => MAX_PACKET,
                        _ => rng.below(300),
                    };
                    (0..n).map(|_| rng.next() as u8).collect()
                })
                .collect();
            let stream: Vec<u8> = packets.iter().flat_map(|p| framed(p)).collect();
            let mut reads = Vec::new();
            let mut rest = &stream[..];
            while !rest.is_empty() {
                let k = (rng.below(rest.len().min(400)) + 1).min(rest.len());
                let (a, b) = rest.split_at(if rng.below(4) == 0 { 1 } else { k });
                reads.push(a);
                rest = b;
            }
            let (got, _, q) = run_reads(&reads);
            assert_eq!(got, packets);
            assert!(q.partial.is_empty());
        }
    }

    // ---- through Lua ----

    /// `datamsg(id, bytes)`: a DATA socket message (light userdata, size).
    unsafe extern "C-unwind" fn datamsg(l: *mut lua_State) -> c_int {
        // SAFETY: called by Lua with a valid state.
        unsafe {
            let id = ffi::luaL_checkinteger(l, 1) as i32;
            let bytes = lua::check_bytes(l, 2);
            let buf = Payload::from_raw(payload_from(bytes), bytes.len());
            let p = sm::Event::data(id, buf, bytes.len()).encode();
            let n = p.len();
            ffi::lua_pushlightuserdata(l, p.into_raw().cast());
            ffi::lua_pushinteger(l, n as ffi::lua_Integer);
        }
        2
    }

    /// `sockmsg(kind, id, ud [, text])`: any other socket message.
    unsafe extern "C-unwind" fn sockmsg(l: *mut lua_State) -> c_int {
        // SAFETY: called by Lua with a valid state.
        unsafe {
            let kind = ffi::luaL_checkinteger(l, 1) as i32;
            let id = ffi::luaL_checkinteger(l, 2) as i32;
            let ud = ffi::luaL_checkinteger(l, 3) as i32;
            let text = String::from_utf8_lossy(lua::to_bytes(l, 4).unwrap_or(b"")).into_owned();
            let ev = match kind {
                sm::CONNECT => sm::Event::connect(id, ud, &text),
                sm::CLOSE => sm::Event::close(id),
                sm::ACCEPT => sm::Event::accept(id, ud, &text),
                sm::ERROR => sm::Event::error(id, &text),
                sm::WARNING => sm::Event::warning(id, ud),
                sm::UDP => {
                    let mut b = text.into_bytes();
                    let n = b.len();
                    b.extend_from_slice(&[1, 0, 80, 127, 0, 0, 1]);
                    sm::Event::udp(id, Payload::copy_of(&b), n)
                }
                _ => sm::Event::close(id),
            };
            let p = ev.encode();
            let n = p.len();
            if !matches!(kind, 1..=7) {
                // An unknown event type: patch the record's type field.
                ptr::write_unaligned(p.as_ptr().cast::<i32>(), kind);
            }
            ffi::lua_pushlightuserdata(l, p.into_raw().cast());
            ffi::lua_pushinteger(l, n as ffi::lua_Integer);
        }
        2
    }

    /// `freemsg(p)`: frees a socket message record (the framework's job after dispatch).
    unsafe extern "C-unwind" fn freemsg(l: *mut lua_State) -> c_int {
        // SAFETY: the tests pass records from datamsg/sockmsg, once each.
        unsafe { payload_free(ffi::lua_touserdata(l, 1).cast()) };
        0
    }

    /// `peek(p, n)`: copies a buffer into a string without freeing it.
    unsafe extern "C-unwind" fn peek(l: *mut lua_State) -> c_int {
        // SAFETY: the tests pass live buffers with their sizes.
        unsafe {
            let p = ffi::lua_touserdata(l, 1).cast::<u8>();
            let n = ffi::luaL_checkinteger(l, 2) as usize;
            push_bytes(
                l,
                if n == 0 {
                    &[]
                } else {
                    slice::from_raw_parts(p, n)
                },
            );
        }
        1
    }

    /// `isnull(p)`: whether a light userdata is NULL.
    unsafe extern "C-unwind" fn isnull(l: *mut lua_State) -> c_int {
        // SAFETY: called by Lua with a valid state.
        unsafe {
            let null = ffi::lua_type(l, 1) == ffi::LUA_TLIGHTUSERDATA
                && ffi::lua_touserdata(l, 1).is_null();
            ffi::lua_pushboolean(l, null as c_int);
        }
        1
    }

    /// `nullptr()`: a NULL light userdata.
    unsafe extern "C-unwind" fn nullptr(l: *mut lua_State) -> c_int {
        // SAFETY: one push.
        unsafe { ffi::lua_pushlightuserdata(l, ptr::null_mut()) };
        1
    }

    /// `dropped()`: queues dropped on this thread so far.
    unsafe extern "C-unwind" fn dropped(l: *mut lua_State) -> c_int {
        // SAFETY: one push.
        unsafe { ffi::lua_pushinteger(l, DROPPED.with(|d| d.get()) as ffi::lua_Integer) };
        1
    }

    fn vm() -> TestVm {
        TestVm::new(
            PRELUDE,
            &[
                (c"datamsg", datamsg),
                (c"sockmsg", sockmsg),
                (c"freemsg", freemsg),
                (c"peek", peek),
                (c"isnull", isnull),
                (c"nullptr", nullptr),
                (c"dropped", dropped),
            ],
        )
        .with_module(c"netpack", open)
    }

    const PRELUDE: &str = r#"
DATA, CONNECT, CLOSE, ACCEPT, ERROR, UDP, WARNING = 1, 2, 3, 4, 5, 6, 7
-- Feeds one read on `id` through filter; returns filter's results.
function feed(q, id, bytes)
  local m, sz = datamsg(id, bytes)
  local r = table.pack(netpack.filter(q, m, sz))
  freemsg(m)
  return table.unpack(r, 1, r.n)
end
function event(q, kind, id, ud, text)
  local m, sz = sockmsg(kind, id, ud, text)
  local r = table.pack(netpack.filter(q, m, sz))
  freemsg(m)
  return table.unpack(r, 1, r.n)
end
function frame(s) return string.pack('>s2', s) end
function eq(got, want, what)
  if got ~= want then
    error(string.format('%s: want %q got %q', what or '?', tostring(want), tostring(got)), 2)
  end
end
function count(...) return select('#', ...) end
-- Drains the queue into a list of {fd, string}.
function drain(q)
  local out = {}
  for fd, p, sz in netpack.pop, q do out[#out + 1] = {fd, netpack.tostring(p, sz)} end
  return out
end
"#;

    #[test]
    fn one_whole_packet_is_data() {
        vm().check(
            r#"
local q, kind, fd, p, sz = feed(nil, 5, frame('hello'))
eq(q, nil, 'no queue needed')
eq(kind, 'data') eq(fd, 5) eq(sz, 5) eq(math.type(sz), 'integer')
eq(type(p), 'userdata')
eq(netpack.tostring(p, sz), 'hello')
local r = table.pack(feed(nil, 5, frame('x')))
eq(r.n, 5) eq(netpack.tostring(r[4], r[5]), 'x')
"#,
        );
    }

    #[test]
    fn two_packets_in_one_read_are_more() {
        vm().check(
            r#"
local r = table.pack(feed(nil, 3, frame('ab') .. frame('cde')))
eq(r.n, 2) eq(type(r[1]), 'userdata') eq(r[2], 'more')
local q = r[1]
local fd, p, sz = netpack.pop(q)
eq(fd, 3) eq(sz, 2) eq(netpack.tostring(p, sz), 'ab')
fd, p, sz = netpack.pop(q)
eq(fd, 3) eq(sz, 3) eq(netpack.tostring(p, sz), 'cde')
eq(count(netpack.pop(q)), 0, 'empty queue pops nothing')
eq(count(netpack.pop(nil)), 0, 'nil queue pops nothing')
-- The same queue object keeps coming back.
local q2, kind = feed(q, 3, frame('1') .. frame('2') .. frame('3'))
assert(rawequal(q, q2)) eq(kind, 'more')
local got = drain(q)
eq(#got, 3) eq(got[3][2], '3')
-- One packet plus the start of the next is also "more".
local q3, kind = feed(q, 4, frame('a') .. '\0')
assert(rawequal(q, q3)) eq(kind, 'more')
got = drain(q) eq(#got, 1) eq(got[1][1], 4) eq(got[1][2], 'a')
local _, kind, fd, p, sz = feed(q, 4, '\1b')
eq(kind, 'data') eq(fd, 4) eq(netpack.tostring(p, sz), 'b')
"#,
        );
    }

    #[test]
    fn packet_split_across_three_reads() {
        vm().check(
            r#"
local s = frame('hello world')
local q, kind = feed(nil, 7, s:sub(1, 4))
eq(type(q), 'userdata') eq(kind, nil)
eq(count(feed(q, 7, s:sub(5, 9))), 1, 'still partial')
local q2, kind, fd, p, sz = feed(q, 7, s:sub(10))
assert(rawequal(q, q2))
eq(kind, 'data') eq(fd, 7) eq(sz, 11) eq(netpack.tostring(p, sz), 'hello world')
eq(count(netpack.pop(q)), 0)
-- Completing a partial plus more: "more", in order.
feed(q, 7, s:sub(1, 5))
local _, kind = feed(q, 7, s:sub(6) .. frame('next'))
eq(kind, 'more')
local got = drain(q)
eq(#got, 2) eq(got[1][2], 'hello world') eq(got[2][2], 'next')
"#,
        );
    }

    #[test]
    fn header_split_across_reads() {
        vm().check(
            r#"
local q, kind = feed(nil, 1, '\0')
eq(type(q), 'userdata') eq(kind, nil)
local _, kind, fd, p, sz = feed(q, 1, '\5hello')
eq(kind, 'data') eq(sz, 5) eq(netpack.tostring(p, sz), 'hello')
-- header high byte, then low byte alone, then body in two parts
eq(count(feed(q, 1, '\1')), 1)
eq(count(feed(q, 1, '\2')), 1)
eq(count(feed(q, 1, string.rep('x', 200))), 1)
local _, kind, fd, p, sz = feed(q, 1, string.rep('y', 58))
eq(kind, 'data') eq(sz, 258)
eq(netpack.tostring(p, sz), string.rep('x', 200) .. string.rep('y', 58))
-- partial states of different fds do not mix
feed(q, 10, '\0') feed(q, 11, '\0\3a')
local _, kind, fd, p, sz = feed(q, 11, 'bc')
eq(kind, 'data') eq(fd, 11) eq(netpack.tostring(p, sz), 'abc')
local _, kind, fd, p, sz = feed(q, 10, '\1z')
eq(kind, 'data') eq(fd, 10) eq(netpack.tostring(p, sz), 'z')
"#,
        );
    }

    #[test]
    fn zero_length_packets() {
        vm().check(
            r#"
local q, kind, fd, p, sz = feed(nil, 2, '\0\0')
eq(kind, 'data') eq(sz, 0) assert(not isnull(p), 'non-null pointer')
eq(netpack.tostring(p, sz), '')
local q, kind = feed(nil, 2, '\0\0\0\0')
eq(kind, 'more')
local got = drain(q)
eq(#got, 2) eq(got[1][2], '') eq(got[2][2], '')
-- header split, zero length: the second byte completes the packet
feed(q, 2, '\0')
local _, kind, fd, p, sz = feed(q, 2, '\0')
eq(kind, 'data') eq(sz, 0) assert(not isnull(p))
netpack.tostring(p, sz)
"#,
        );
    }

    #[test]
    fn packet_of_65535_bytes() {
        vm().check(
            r#"
local body = string.rep('abcdefghijklmnopq', 3855)
eq(#body, 65535)
local s = frame(body)
eq(s:byte(1), 255) eq(s:byte(2), 255)
local q, kind, fd, p, sz = feed(nil, 9, s)
eq(kind, 'data') eq(sz, 65535) eq(netpack.tostring(p, sz), body)
-- in 64-byte reads, as the socket server's first reads are
local q = feed(nil, 9, s:sub(1, 64))
local i, result = 65, nil
while i <= #s do
  local r = table.pack(feed(q, 9, s:sub(i, i + 63)))
  if i + 63 < #s then eq(r.n, 1, 'partial at ' .. i) else result = r end
  i = i + 64
end
eq(result[2], 'data') eq(result[5], 65535) eq(netpack.tostring(result[4], result[5]), body)
-- followed by another packet in the same read
local q, kind = feed(nil, 9, s .. frame('tail'))
eq(kind, 'more')
local got = drain(q)
eq(#got, 2) eq(got[1][2], body) eq(got[2][2], 'tail')
"#,
        );
    }

    #[test]
    fn other_events() {
        vm().check(
            r#"
local r = table.pack(event(nil, CONNECT, 4, 8888, '127.0.0.1'))
eq(r.n, 5) eq(r[1], nil) eq(r[2], 'init') eq(r[3], 4) eq(r[4], '127.0.0.1') eq(r[5], 8888)
r = table.pack(event(nil, CONNECT, 5, 0, ''))
eq(r[4], '')
r = table.pack(event(nil, ACCEPT, 4, 17, '10.0.0.1:5000'))
eq(r.n, 4) eq(r[2], 'open') eq(r[3], 17) eq(r[4], '10.0.0.1:5000')
r = table.pack(event(nil, CLOSE, 17, 0))
eq(r.n, 3) eq(r[2], 'close') eq(r[3], 17)
r = table.pack(event(nil, ERROR, 17, 0, 'Connection reset by peer'))
eq(r.n, 4) eq(r[2], 'error') eq(r[3], 17) eq(r[4], 'Connection reset by peer')
r = table.pack(event(nil, WARNING, 17, 1024))
eq(r.n, 4) eq(r[2], 'warning') eq(r[3], 17) eq(r[4], 1024)
r = table.pack(event(nil, UDP, 3, 0, 'datagram'))
eq(r.n, 1) eq(r[1], nil)
r = table.pack(event(nil, 99, 3, 0))
eq(r.n, 1)
-- the queue passes through untouched
local q = feed(nil, 1, '\0')
r = table.pack(event(q, WARNING, 1, 0))
assert(rawequal(r[1], q))
-- close and error discard the partial packet of that fd only
feed(q, 2, '\0\9abc')
feed(q, 3, '\0\9abc')
eq(select(2, event(q, CLOSE, 1, 0)), 'close')
eq(select(2, event(q, ERROR, 2, 0, 'boom')), 'error')
local _, kind, fd, p, sz = feed(q, 1, frame('fresh'))
eq(kind, 'data') eq(netpack.tostring(p, sz), 'fresh')
_, kind, fd, p, sz = feed(q, 2, frame('new'))
eq(kind, 'data') eq(netpack.tostring(p, sz), 'new')
_, kind, fd, p, sz = feed(q, 3, 'defghi')
eq(kind, 'data') eq(fd, 3) eq(netpack.tostring(p, sz), 'abcdefghi')
-- close on a nil queue is fine
eq(select(2, event(nil, CLOSE, 1, 0)), 'close')
"#,
        );
    }

    #[test]
    fn clear_empties_the_queue() {
        vm().check(
            r#"
local q = feed(nil, 1, frame('a') .. frame('b'))
feed(q, 2, '\0\5ab')
netpack.clear(q)
eq(count(netpack.pop(q)), 0, 'packets cleared')
local _, kind, fd, p, sz = feed(q, 2, frame('xy'))
eq(kind, 'data', 'partial cleared') eq(netpack.tostring(p, sz), 'xy')
netpack.clear(nil)
netpack.clear()
netpack.clear(q) netpack.clear(q)
-- still usable after clear
local _, kind = feed(q, 1, frame('1') .. frame('2'))
eq(kind, 'more') eq(#drain(q), 2)
"#,
        );
    }

    #[test]
    fn gc_frees_the_queue() {
        let vm = vm();
        vm.check(
            r#"
local before = dropped()
do
  local q = feed(nil, 1, frame('a') .. frame('b') .. '\0\7x')
  assert(type(q) == 'userdata')
end
collectgarbage() collectgarbage()
eq(dropped(), before + 1, 'queue dropped by __gc')
"#,
        );
    }

    #[test]
    fn pack_and_tostring() {
        vm().check(
            r#"
local p, sz = netpack.pack('hello')
eq(sz, 7) eq(peek(p, sz), '\0\5hello')
eq(netpack.tostring(p, sz), '\0\5hello')
p, sz = netpack.pack('')
eq(sz, 2) eq(netpack.tostring(p, sz), '\0\0')
-- pack(ptr, size) copies and leaves the input alone
local src, n = netpack.pack('abc')
p, sz = netpack.pack(src, n)
eq(sz, 7) eq(peek(p, sz), '\0\5\0\3abc')
eq(netpack.tostring(src, n), '\0\3abc')
eq(netpack.tostring(p, sz), '\0\5\0\3abc')
-- the largest packet, and one byte more
local big = string.rep('z', 65535)
p, sz = netpack.pack(big)
eq(sz, 65537) eq(netpack.tostring(p, sz), '\255\255' .. big)
local ok, err = pcall(netpack.pack, big .. 'z')
assert(not ok)
assert(err:find('Invalid size (too long) of data : 65536', 1, true), err)
ok, err = pcall(netpack.pack, nullptr(), -1)
assert(err:find('Invalid size (too long) of data : -1', 1, true), err)
ok, err = pcall(function() return netpack.pack() end)
assert(err:find("bad argument #1 to 'pack' (string expected, got no value)", 1, true), err)
ok, err = pcall(netpack.pack, nullptr(), 3)
assert(not ok and err:find('null pointer', 1, true), err)
-- a packed buffer filters back to its payload
p, sz = netpack.pack('round trip')
local q, kind, fd, p2, sz2 = feed(nil, 1, netpack.tostring(p, sz))
eq(kind, 'data') eq(netpack.tostring(p2, sz2), 'round trip')
-- tostring of NULL is "" and the size is still checked
eq(netpack.tostring(nullptr(), 10), '')
eq(netpack.tostring(nil, 0), '')
ok, err = pcall(function() return netpack.tostring(nullptr()) end)
assert(err:find("bad argument #2 to 'tostring'", 1, true), err)
"#,
        );
    }

    #[test]
    fn filter_argument_errors() {
        vm().check(
            r#"
local ok, err = pcall(function() return netpack.filter(nil) end)
assert(not ok and err:find("bad argument #3 to 'filter'", 1, true), err)
ok, err = pcall(function() return netpack.filter(nil, nil, 24) end)
assert(not ok and err:find("bad argument #2 to 'filter' (userdata expected, got nil)", 1, true), err)
-- a message shorter than a record yields only the queue
local m, sz = sockmsg(CLOSE, 1, 0)
eq(count(netpack.filter(nil, m, 3)), 1)
freemsg(m)
"#,
        );
    }

    #[test]
    fn random_bytes_never_break_it() {
        vm().check(
            r#"
math.randomseed(12345)
local q
local packets = 0
for i = 1, 3000 do
  local fd = math.random(1, 5)
  local r = math.random(1, 20)
  if r == 1 then
    q = event(q, CLOSE, fd, 0)
  elseif r == 2 then
    q = event(q, ERROR, fd, 0, 'x')
  elseif r == 3 then
    netpack.clear(q)
  else
    local n = math.random(0, 300)
    local t = {}
    for j = 1, n do
      -- small header values now and then, so packets do complete
      t[j] = string.char(math.random(0, 3) == 0 and math.random(0, 2) or math.random(0, 255))
    end
    local res = table.pack(feed(q, fd, table.concat(t)))
    q = res[1]
    if res[2] == 'data' then
      eq(res[3], fd)
      assert(math.type(res[5]) == 'integer' and res[5] >= 0 and res[5] <= 65535)
      eq(#netpack.tostring(res[4], res[5]), res[5])
      packets = packets + 1
    elseif res[2] == 'more' then
      for qfd, p, sz in netpack.pop, q do
        eq(qfd, fd, 'only this read queued packets')
        eq(#netpack.tostring(p, sz), sz)
        packets = packets + 1
      end
    else
      eq(res[2], nil) eq(res.n, 1)
    end
  end
end
assert(packets > 100, 'fuzz should complete some packets: ' .. packets)
netpack.clear(q)
"#,
        );
    }
}
