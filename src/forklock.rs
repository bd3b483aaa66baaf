//! A lock that a `fork()` child can reset.
//!
//! The registry's lock is taken by the `pthread_atfork` prepare handler and
//! must be released in both processes afterwards. A parking_lot mutex can only
//! be released by `force_unlock`, which, when a parent thread was parked on
//! the lock at the fork, goes through parking_lot's process-wide wait queue:
//! in the child that queue may be locked by a thread that no longer exists
//! (seen as a hang in about one fork of three). This lock is one atomic flag:
//! the child stores "unlocked" and nothing else is involved. It is only for
//! short critical sections (map look-ups), so waiters spin and yield.

use std::cell::UnsafeCell;
use std::ops::{Deref, DerefMut};
use std::sync::atomic::{AtomicBool, Ordering};

/// A mutual-exclusion lock over `T` with fork hooks.
pub struct ForkLock<T> {
    locked: AtomicBool,
    value: UnsafeCell<T>,
}

// SAFETY: access to `value` is serialised by `locked` (acquire/release).
unsafe impl<T: Send> Sync for ForkLock<T> {}

/// Holds a [`ForkLock`]; releases it when dropped.
pub struct ForkGuard<'a, T> {
    lock: &'a ForkLock<T>,
}

impl<T> ForkLock<T> {
    /// An unlocked lock.
    pub const fn new(value: T) -> ForkLock<T> {
        ForkLock {
            locked: AtomicBool::new(false),
            value: UnsafeCell::new(value),
        }
    }

    fn acquire(&self) {
        let mut spins = 0u32;
        while self
            .locked
            .compare_exchange_weak(false, true, Ordering::Acquire, Ordering::Relaxed)
            .is_err()
        {
            spins += 1;
            if spins < 64 {
                std::hint::spin_loop();
            } else {
                std::thread::yield_now();
            }
        }
    }

    /// Wait for the lock and take it.
    pub fn lock(&self) -> ForkGuard<'_, T> {
        self.acquire();
        ForkGuard { lock: self }
    }

    /// The prepare handler: take the lock and keep it across the fork.
    pub fn hold_for_fork(&self) {
        self.acquire();
    }

    /// The parent and child handlers: release what [`ForkLock::hold_for_fork`] took.
    ///
    /// # Safety
    /// Only after `hold_for_fork` on this lock, with no guard alive.
    pub unsafe fn release_after_fork(&self) {
        self.locked.store(false, Ordering::Release);
    }
}

impl<T> Deref for ForkGuard<'_, T> {
    type Target = T;
    fn deref(&self) -> &T {
        // SAFETY: the guard holds the lock.
        unsafe { &*self.lock.value.get() }
    }
}

impl<T> DerefMut for ForkGuard<'_, T> {
    fn deref_mut(&mut self) -> &mut T {
        // SAFETY: the guard holds the lock, and is borrowed mutably.
        unsafe { &mut *self.lock.value.get() }
    }
}

impl<T> Drop for ForkGuard<'_, T> {
    fn drop(&mut self) {
        self.lock.locked.store(false, Ordering::Release);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::Arc;

    #[test]
    fn serialises_threads() {
        let lock = Arc::new(ForkLock::new(0u64));
        let threads: Vec<_> = (0..4)
            .map(|_| {
                let lock = lock.clone();
                std::thread::spawn(move || {
                    for _ in 0..10_000 {
                        *lock.lock() += 1;
                    }
                })
            })
            .collect();
        for t in threads {
            t.join().expect("thread");
        }
        assert_eq!(*lock.lock(), 40_000);
    }

    #[test]
    fn released_after_fork_hold() {
        let lock = ForkLock::new(1u8);
        lock.hold_for_fork();
        assert!(lock.locked.load(Ordering::Acquire));
        // SAFETY: held by hold_for_fork just above, no guard alive.
        unsafe { lock.release_after_fork() };
        assert_eq!(*lock.lock(), 1);
    }
}
