//! Heap accounting per service, behind `skynet.memory`.
//!
//! [`CountingAlloc`] wraps the system allocator. Each block carries a small header
//! naming the service that allocated it (the service the worker thread is dispatching,
//! 0 elsewhere) and its size, so a free is charged back to the allocating service
//! whichever thread frees it. Statistics live in 65536 slots indexed by
//! `handle & 0xFFFF`, as upstream's. Lua VM memory is not counted here: snlua accounts
//! for it itself (`memlimit`, `collectgarbage "count"`).
//!
//! Giving memory back: upstream never does, so a node that once ran 20,000 services
//! keeps their memory. Here a released service is counted ([`note_release`]), and a
//! worker about to sleep after releases asks both allocators to return free pages to the
//! OS ([`give_back`]): mimalloc (the Lua heaps) collects its thread's heap and purges,
//! libc's malloc (everything else) trims.

use std::alloc::{GlobalAlloc, Layout, System};
use std::cell::Cell;
use std::sync::atomic::{AtomicI64, AtomicU32, AtomicU64, Ordering};

const SLOTS: usize = 0x10000;
const HEADER: usize = 16;

struct Slot {
    handle: AtomicU32,
    bytes: AtomicI64,
    blocks: AtomicI64,
}

static STATS: [Slot; SLOTS] = [const {
    Slot {
        handle: AtomicU32::new(0),
        bytes: AtomicI64::new(0),
        blocks: AtomicI64::new(0),
    }
}; SLOTS];

thread_local! {
    static CURRENT: Cell<u32> = const { Cell::new(0) };
}

/// Sets the service this thread works for (0: none).
pub fn set_current(handle: u32) {
    CURRENT.with(|c| c.set(handle));
}

/// The service this thread works for (0: none), as `set_current` left it.
pub fn current() -> u32 {
    CURRENT.try_with(|c| c.get()).unwrap_or(0)
}

fn slot(handle: u32) -> &'static Slot {
    &STATS[(handle as usize) & (SLOTS - 1)]
}

fn charge(handle: u32, bytes: i64, blocks: i64) {
    let s = slot(handle);
    if handle != 0 && bytes > 0 {
        s.handle.store(handle, Ordering::Relaxed);
    }
    s.bytes.fetch_add(bytes, Ordering::Relaxed);
    s.blocks.fetch_add(blocks, Ordering::Relaxed);
}

/// The prefix in front of a block: at least the header, and a multiple of the alignment
/// so the user pointer keeps it.
fn prefix(align: usize) -> usize {
    HEADER.max(align)
}

pub struct CountingAlloc;

// SAFETY: every block is the system allocator's block shifted by `prefix(align)`, with
// the header written just below the user pointer; dealloc/realloc undo exactly that
// shift with the same layout, so the system allocator always sees its own pointers.
unsafe impl GlobalAlloc for CountingAlloc {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        let pre = prefix(layout.align());
        let Ok(full) = Layout::from_size_align(layout.size() + pre, layout.align()) else {
            return std::ptr::null_mut();
        };
        // SAFETY: `full` has non-zero size.
        let raw = unsafe { System.alloc(full) };
        if raw.is_null() {
            return raw;
        }
        let handle = current();
        // SAFETY: `raw` has `pre >= 16` bytes before the user part; the header fits in
        // the last 16 and is 8-aligned because `pre` is a multiple of 16 or `align`.
        unsafe {
            let user = raw.add(pre);
            (user.sub(HEADER) as *mut u32).write_unaligned(handle);
            (user.sub(8) as *mut usize).write_unaligned(layout.size());
            charge(handle, layout.size() as i64, 1);
            user
        }
    }

    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        let pre = prefix(layout.align());
        // SAFETY: `ptr` came from `alloc`/`realloc` above with this layout.
        unsafe {
            let handle = (ptr.sub(HEADER) as *const u32).read_unaligned();
            charge(handle, -(layout.size() as i64), -1);
            let full = Layout::from_size_align_unchecked(layout.size() + pre, layout.align());
            System.dealloc(ptr.sub(pre), full);
        }
    }

    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        let pre = prefix(layout.align());
        // SAFETY: as dealloc; the system realloc keeps the header bytes it copies.
        unsafe {
            let handle = (ptr.sub(HEADER) as *const u32).read_unaligned();
            let full = Layout::from_size_align_unchecked(layout.size() + pre, layout.align());
            let raw = System.realloc(ptr.sub(pre), full, new_size + pre);
            if raw.is_null() {
                return raw;
            }
            let user = raw.add(pre);
            (user.sub(8) as *mut usize).write_unaligned(new_size);
            charge(handle, new_size as i64 - layout.size() as i64, 0);
            user
        }
    }
}

fn live_slots() -> impl Iterator<Item = (u32, i64, i64)> {
    STATS.iter().filter_map(|s| {
        let h = s.handle.load(Ordering::Relaxed);
        (h != 0).then(|| {
            (
                h,
                s.bytes.load(Ordering::Relaxed),
                s.blocks.load(Ordering::Relaxed),
            )
        })
    })
}

/// Bytes allocated by services (slots with a handle).
pub fn total() -> i64 {
    live_slots().map(|(_, b, _)| b).sum()
}

/// Live blocks allocated by services.
pub fn blocks() -> i64 {
    live_slots().map(|(_, _, n)| n).sum()
}

/// `(handle, bytes)` of every slot in use (read in place: the Lua side fills a table
/// from it, and a Lua error there must not skip the drop of a copy).
pub fn info() -> impl Iterator<Item = (u32, i64)> {
    live_slots().map(|(h, b, _)| (h, b))
}

/// Bytes charged to `handle` (0 when its slot belongs to another service).
pub fn of(handle: u32) -> i64 {
    let s = slot(handle);
    if s.handle.load(Ordering::Relaxed) == handle {
        s.bytes.load(Ordering::Relaxed)
    } else {
        0
    }
}

/// Payloads up to this size come from malloc's heap, not from a mapping of their own.
const MMAP_THRESHOLD: i32 = 4 << 20;
/// malloc trims its heap by itself only past this much free memory at the top: giving
/// memory back is [`GiveBack`]'s job.
const TRIM_THRESHOLD: i32 = 8 << 20;

/// Fixes malloc's thresholds for the node's payloads. glibc adapts them only after it
/// has freed a mapped chunk; a process whose first large payloads happened to grow in
/// place at the top of the heap kept the 128 KiB defaults and trimmed and refaulted its
/// heap for every 64 KiB message (a million page faults in `large_msg_64k`).
pub fn init() {
    #[cfg(target_env = "gnu")]
    // SAFETY: mallopt only sets two of malloc's parameters; it is called at boot, before
    // the node's threads start.
    unsafe {
        libc::mallopt(libc::M_MMAP_THRESHOLD, MMAP_THRESHOLD);
        libc::mallopt(libc::M_TRIM_THRESHOLD, TRIM_THRESHOLD);
    }
}

/// Services released so far: a worker gives memory back when this moved.
static RELEASES: AtomicU64 = AtomicU64::new(0);

/// Counts a released service (its VM and context are freed now).
pub fn note_release() {
    RELEASES.fetch_add(1, Ordering::Relaxed);
}

/// A busy worker gives memory back after this many releases, not only when it idles: a
/// node that kills thousands of services at once is busy for a while after.
const RELEASES_PER_GIVE_BACK: u64 = 1024;

/// What one worker has given back: the release count it saw at its last give-back.
#[derive(Default)]
pub struct GiveBack {
    seen: u64,
}

impl GiveBack {
    /// Between batches: gives memory back once many services were released.
    pub fn busy(&mut self) {
        if RELEASES.load(Ordering::Relaxed) - self.seen >= RELEASES_PER_GIVE_BACK {
            self.idle();
        }
    }

    /// Before sleeping: gives memory back if any service was released since the last
    /// give-back on this thread. mimalloc heaps are per thread, so each worker collects
    /// its own.
    pub fn idle(&mut self) {
        let releases = RELEASES.load(Ordering::Relaxed);
        if releases == self.seen {
            return;
        }
        self.seen = releases;
        // SAFETY: both calls only walk the allocators' own free lists; no block in use
        // is touched.
        unsafe {
            libmimalloc_sys::mi_collect(true);
            libc::malloc_trim(0);
        }
    }
}
