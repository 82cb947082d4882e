//! Service handles and local names: [`HandleTable`].
//!
//! A handle is `harbor id << 24 | local id`. Local ids are handed out from a counter that
//! only moves forward (wrapping after 0xFFFFFF back to 1), skipping ids whose slot is
//! taken, so the numbers in logs match upstream's. Live entries sit in an open-addressed
//! slot array of power-of-two size indexed by `id & (size - 1)`, doubled when a whole
//! round finds no free slot; a lookup is one read lock and one index. Names are kept
//! sorted, as upstream's name list.
//!
//! The table holds any `T` (the core keeps its service contexts here): it knows handles,
//! not services, so it sits at the bottom of the core with the queues and the timer.

use parking_lot::RwLock;
use std::collections::BTreeMap;
use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::Arc;

pub const HANDLE_MASK: u32 = 0xff_ffff;
pub const HANDLE_REMOTE_SHIFT: u32 = 24;
const DEFAULT_SLOTS: usize = 4;

struct Table<T> {
    next_index: u32,
    slots: Vec<Option<(u32, Arc<T>)>>,
    names: BTreeMap<Vec<u8>, u32>,
}

/// Live entries by handle, and local names.
pub struct HandleTable<T> {
    table: RwLock<Table<T>>,
    /// `harbor id << 24` of this node.
    harbor: AtomicU32,
}

impl<T> Default for HandleTable<T> {
    fn default() -> Self {
        Self::new()
    }
}

impl<T> HandleTable<T> {
    pub fn new() -> HandleTable<T> {
        HandleTable {
            table: RwLock::new(Table {
                next_index: 1,
                slots: (0..DEFAULT_SLOTS).map(|_| None).collect(),
                names: BTreeMap::new(),
            }),
            harbor: AtomicU32::new(0),
        }
    }

    pub fn set_harbor(&self, harbor: u32) {
        self.harbor
            .store((harbor & 0xff) << HANDLE_REMOTE_SHIFT, Ordering::Relaxed);
    }

    /// This node's harbor bits (already shifted).
    pub fn harbor_bits(&self) -> u32 {
        self.harbor.load(Ordering::Relaxed)
    }

    /// True when `handle` lives on another node.
    pub fn is_remote(&self, handle: u32) -> bool {
        let h = handle & !HANDLE_MASK;
        h != self.harbor_bits() && h != 0
    }

    /// Allocates a handle and registers what `build` makes for it; None when all
    /// 0xFFFFFF local ids are in use.
    pub fn register(&self, build: impl FnOnce(u32) -> Arc<T>) -> Option<Arc<T>> {
        let mut t = self.table.write();
        loop {
            let size = t.slots.len() as u32;
            let mut index = t.next_index;
            for _ in 0..size {
                if index > HANDLE_MASK {
                    index = 1;
                }
                let slot = (index & (size - 1)) as usize;
                if t.slots[slot].is_none() {
                    let handle = index | self.harbor_bits();
                    let entry = build(handle);
                    t.slots[slot] = Some((handle, entry.clone()));
                    t.next_index = index + 1;
                    return Some(entry);
                }
                index += 1;
            }
            if !grow(&mut t) {
                return None;
            }
        }
    }

    /// The live entry behind `handle`, if any.
    pub fn grab(&self, handle: u32) -> Option<Arc<T>> {
        let t = self.table.read();
        let slot = (handle as usize) & (t.slots.len() - 1);
        match &t.slots[slot] {
            Some((h, entry)) if *h == handle => Some(entry.clone()),
            _ => None,
        }
    }

    /// Removes `handle` and every name bound to it; returns the entry so the caller can
    /// release it outside the table lock.
    pub fn retire(&self, handle: u32) -> Option<Arc<T>> {
        let mut t = self.table.write();
        let slot = (handle as usize) & (t.slots.len() - 1);
        match &t.slots[slot] {
            Some((h, _)) if *h == handle => {}
            _ => return None,
        }
        let entry = t.slots[slot].take();
        t.names.retain(|_, h| *h != handle);
        entry.map(|(_, e)| e)
    }

    /// Every live handle (for ABORT).
    pub fn all(&self) -> Vec<u32> {
        self.table
            .read()
            .slots
            .iter()
            .flatten()
            .map(|(h, _)| *h)
            .collect()
    }

    /// Resolves a local name (without the dot); 0 when unknown.
    pub fn find_name(&self, name: &[u8]) -> u32 {
        self.table.read().names.get(name).copied().unwrap_or(0)
    }

    /// Binds a local name (without the dot); false if the name is taken.
    pub fn bind_name(&self, name: &[u8], handle: u32) -> bool {
        let mut t = self.table.write();
        if t.names.contains_key(name) {
            return false;
        }
        t.names.insert(name.to_vec(), handle);
        true
    }

    /// Every `(name, handle)` in name order.
    pub fn names(&self) -> Vec<(Vec<u8>, u32)> {
        let t = self.table.read();
        t.names.iter().map(|(n, h)| (n.clone(), *h)).collect()
    }
}

fn grow<T>(t: &mut Table<T>) -> bool {
    let size = t.slots.len() * 2;
    if size > (HANDLE_MASK as usize) + 1 {
        return false;
    }
    let mut slots: Vec<Option<(u32, Arc<T>)>> = (0..size).map(|_| None).collect();
    for (h, entry) in t.slots.drain(..).flatten() {
        slots[(h & (size as u32 - 1)) as usize] = Some((h, entry));
    }
    t.slots = slots;
    true
}

#[cfg(test)]
mod tests {
    use super::*;

    fn register(t: &HandleTable<u32>) -> u32 {
        let e = t.register(Arc::new).expect("a free handle");
        *e
    }

    #[test]
    fn handles_count_up_from_one_with_the_harbor_bits() {
        let t = HandleTable::new();
        t.set_harbor(3);
        let got: Vec<u32> = (0..10).map(|_| register(&t)).collect();
        let want: Vec<u32> = (1..=10).map(|i| 3 << 24 | i).collect();
        assert_eq!(got, want);
        assert!(!t.is_remote(3 << 24 | 5));
        assert!(!t.is_remote(5));
        assert!(t.is_remote(4 << 24 | 5));
        assert_eq!(*t.grab(3 << 24 | 7).expect("live"), 3 << 24 | 7);
    }

    #[test]
    fn a_retired_id_is_not_reused_until_the_counter_comes_round() {
        let t = HandleTable::new();
        let a = register(&t);
        let b = register(&t);
        assert!(t.retire(a).is_some());
        assert!(t.grab(a).is_none());
        assert!(t.retire(a).is_none());
        assert_eq!(register(&t), b + 1);
        assert_eq!(t.all().len(), 2);
    }

    #[test]
    fn the_slot_array_grows_and_keeps_every_entry() {
        let t = HandleTable::new();
        let handles: Vec<u32> = (0..1000).map(|_| register(&t)).collect();
        assert_eq!(handles, (1..=1000).collect::<Vec<_>>());
        for h in &handles {
            assert_eq!(*t.grab(*h).expect("live"), *h);
        }
        let slots = t.table.read().slots.len();
        assert_eq!(slots, 1024);
    }

    #[test]
    fn the_counter_wraps_to_one_and_skips_live_ids() {
        let t = HandleTable::new();
        let one = register(&t);
        t.table.write().next_index = HANDLE_MASK - 1;
        assert_eq!(register(&t), HANDLE_MASK - 1);
        assert_eq!(register(&t), HANDLE_MASK);
        // After the wrap the counter restarts at 1 (0 is never a handle) and skips every
        // id whose slot is taken: 1, 2 (slot of MASK-1) and 3 (slot of MASK), as upstream.
        assert_eq!(one, 1);
        let next = register(&t);
        assert_eq!(next, 4);
        assert_eq!(*t.grab(next).expect("live"), next);
        assert_eq!(*t.grab(HANDLE_MASK).expect("live"), HANDLE_MASK);
    }

    #[test]
    fn names_are_unique_sorted_and_go_with_their_handle() {
        let t = HandleTable::new();
        let a = register(&t);
        let b = register(&t);
        assert!(t.bind_name(b"zeta", a));
        assert!(t.bind_name(b"alpha", b));
        assert!(t.bind_name(b"mid", a));
        assert!(!t.bind_name(b"alpha", a));
        assert_eq!(t.find_name(b"alpha"), b);
        assert_eq!(t.find_name(b"nobody"), 0);
        let names: Vec<Vec<u8>> = t.names().into_iter().map(|(n, _)| n).collect();
        assert_eq!(
            names,
            vec![b"alpha".to_vec(), b"mid".to_vec(), b"zeta".to_vec()]
        );
        t.retire(a);
        assert_eq!(t.names(), vec![(b"alpha".to_vec(), b)]);
    }
}
