//! Service handles and local names.
//!
//! A handle is `harbor id << 24 | local id`. Local ids are handed out from a counter that
//! only moves forward (wrapping after 0xFFFFFF), skipping ids whose slot is taken, so the
//! numbers in logs match upstream's. Live services sit in an open-addressed slot array of
//! power-of-two size indexed by `id & (size - 1)`, doubled when full; a lookup is one
//! read lock and one index.

use crate::context::Context;
use parking_lot::RwLock;
use std::collections::HashMap;
use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::{Arc, LazyLock};

pub const HANDLE_MASK: u32 = 0xff_ffff;
pub const HANDLE_REMOTE_SHIFT: u32 = 24;

struct Table {
    next_index: u32,
    slots: Vec<Option<Arc<Context>>>,
    names: HashMap<Vec<u8>, u32>,
}

static TABLE: LazyLock<RwLock<Table>> = LazyLock::new(|| {
    RwLock::new(Table {
        next_index: 1,
        slots: vec![None; 4],
        names: HashMap::new(),
    })
});

/// `harbor id << 24` of this node.
static HARBOR: AtomicU32 = AtomicU32::new(0);

pub fn set_harbor(harbor: u32) {
    HARBOR.store((harbor & 0xff) << HANDLE_REMOTE_SHIFT, Ordering::Relaxed);
}

/// This node's harbor bits (already shifted).
pub fn harbor_bits() -> u32 {
    HARBOR.load(Ordering::Relaxed)
}

/// True when `handle` lives on another node.
pub fn is_remote(handle: u32) -> bool {
    let h = handle & !HANDLE_MASK;
    h != harbor_bits() && h != 0
}

/// Allocates a handle and registers the context `build` makes for it; None when all
/// 0xFFFFFF local ids are in use.
pub fn register(build: impl FnOnce(u32) -> Arc<Context>) -> Option<Arc<Context>> {
    let mut t = TABLE.write();
    loop {
        let size = t.slots.len() as u32;
        let mut index = t.next_index;
        for _ in 0..size {
            if index > HANDLE_MASK {
                index = 1;
            }
            let slot = (index & (size - 1)) as usize;
            if t.slots[slot].is_none() {
                let handle = index | harbor_bits();
                let ctx = build(handle);
                t.slots[slot] = Some(ctx.clone());
                t.next_index = index + 1;
                return Some(ctx);
            }
            index += 1;
        }
        if !grow(&mut t) {
            return None;
        }
    }
}

fn grow(t: &mut Table) -> bool {
    let size = t.slots.len() * 2;
    if size > (HANDLE_MASK as usize) + 1 {
        return false;
    }
    let mut slots = vec![None; size];
    for ctx in t.slots.drain(..).flatten() {
        let slot = (ctx.handle & (size as u32 - 1)) as usize;
        slots[slot] = Some(ctx);
    }
    t.slots = slots;
    true
}

/// The live context behind `handle`, if any.
pub fn grab(handle: u32) -> Option<Arc<Context>> {
    let t = TABLE.read();
    let slot = (handle as usize) & (t.slots.len() - 1);
    match &t.slots[slot] {
        Some(ctx) if ctx.handle == handle => Some(ctx.clone()),
        _ => None,
    }
}

/// Removes `handle` and every name bound to it; returns the context so the caller can
/// release it outside the table lock.
pub fn retire(handle: u32) -> Option<Arc<Context>> {
    let mut t = TABLE.write();
    let size = t.slots.len();
    let slot = (handle as usize) & (size - 1);
    match &t.slots[slot] {
        Some(ctx) if ctx.handle == handle => {}
        _ => return None,
    }
    let ctx = t.slots[slot].take();
    t.names.retain(|_, h| *h != handle);
    ctx
}

/// Every live handle (for ABORT).
pub fn all() -> Vec<u32> {
    TABLE
        .read()
        .slots
        .iter()
        .flatten()
        .map(|c| c.handle)
        .collect()
}

/// Resolves a local name (without the dot); 0 when unknown.
pub fn find_name(name: &[u8]) -> u32 {
    TABLE.read().names.get(name).copied().unwrap_or(0)
}

/// Binds a local name (without the dot); false if the name is taken.
pub fn bind_name(name: &[u8], handle: u32) -> bool {
    let mut t = TABLE.write();
    if t.names.contains_key(name) {
        return false;
    }
    t.names.insert(name.to_vec(), handle);
    true
}
