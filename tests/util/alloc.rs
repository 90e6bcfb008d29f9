//! A counting global allocator for the no-allocation tests. Each test binary that uses it
//! declares `#[global_allocator] static A: util::alloc::Counting = util::alloc::Counting;`.
//!
//! Only threads that switched counting on are counted, so the test harness, other tests running in
//! parallel and server threads do not interfere. Allocations, reallocations and frees all count: a
//! free on a hot path is as bad as an allocation.

use std::alloc::{GlobalAlloc, Layout, System};
use std::cell::Cell;
use std::sync::atomic::{AtomicU64, Ordering};

/// The counting allocator (forwards everything to `System`).
pub struct Counting;

thread_local! {
    // Const-initialised, no destructor: touching them never allocates.
    static ON: Cell<bool> = const { Cell::new(false) };
    static MINE: Cell<u64> = const { Cell::new(0) };
}

/// Allocations (and reallocations) made by every counted thread, for reading one thread's count
/// from another.
static ALL_ALLOCS: AtomicU64 = AtomicU64::new(0);
/// Frees made by every counted thread.
static ALL_FREES: AtomicU64 = AtomicU64::new(0);

fn note(free: bool) {
    // try_with: the allocator also runs during thread teardown, after the thread-locals are gone.
    if ON.try_with(Cell::get).unwrap_or(false) {
        let _ = MINE.try_with(|n| n.set(n.get() + 1));
        if free {
            ALL_FREES.fetch_add(1, Ordering::Relaxed);
        } else {
            ALL_ALLOCS.fetch_add(1, Ordering::Relaxed);
        }
    }
}

// SAFETY: every method forwards to `System` with exactly the arguments it was given, so `System`'s
// guarantees are ours; the counting touches only const-initialised thread-locals and an atomic,
// which neither allocate nor unwind.
unsafe impl GlobalAlloc for Counting {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        note(false);
        // SAFETY: forwarded unchanged; the caller upholds `alloc`'s contract.
        unsafe { System.alloc(layout) }
    }
    unsafe fn alloc_zeroed(&self, layout: Layout) -> *mut u8 {
        note(false);
        // SAFETY: as for `alloc`.
        unsafe { System.alloc_zeroed(layout) }
    }
    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        note(false);
        // SAFETY: `ptr` came from this allocator, which is `System`; arguments forwarded unchanged.
        unsafe { System.realloc(ptr, layout, new_size) }
    }
    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        note(true);
        // SAFETY: `ptr` came from this allocator, which is `System`; arguments forwarded unchanged.
        unsafe { System.dealloc(ptr, layout) }
    }
}

/// Counts the current thread from now on (or stops counting it).
pub fn count_this_thread(on: bool) {
    ON.with(|c| c.set(on));
}

/// Allocations and reallocations of all counted threads so far.
pub fn all_allocations() -> u64 {
    ALL_ALLOCS.load(Ordering::SeqCst)
}

/// Frees of all counted threads so far.
pub fn all_frees() -> u64 {
    ALL_FREES.load(Ordering::SeqCst)
}

/// Runs `f` counting this thread; returns its result and the allocator calls it made.
pub fn allocations_in<R>(f: impl FnOnce() -> R) -> (R, u64) {
    let was = ON.with(Cell::get);
    let before = MINE.with(Cell::get);
    count_this_thread(true);
    let r = f();
    count_this_thread(was);
    (r, MINE.with(Cell::get) - before)
}

/// Allocator calls this thread has made while counted.
pub fn this_thread() -> u64 {
    MINE.with(Cell::get)
}
