//! The connection pool both drivers share: at most `max` connections, opened on the thread
//! that first needs one (no helper thread, so a forked child inherits no lock some thread
//! held).

use std::sync::{Condvar, Mutex, MutexGuard};
use std::time::{Duration, Instant};

use crate::error::{Error, Result};

/// How a [`Pool`] makes a connection, and whether one handed back may be handed out again.
pub(crate) trait Open {
    type Conn;
    fn open(&self) -> Result<Self::Conn>;
    fn reusable(conn: &Self::Conn) -> bool;
}

/// Idle connections, how many are open in all, and how many callers wait for one.
struct Slots<C> {
    idle: Vec<C>,
    open: u32,
    /// Waking nobody still costs a system call: a returned connection wakes only a waiter.
    waiting: u32,
}

/// At most `max` connections; a caller that finds none idle opens one itself, or waits for
/// one to come back when `max` are out.
pub(crate) struct Pool<O: Open> {
    opener: O,
    max: u32,
    wait: Duration,
    slots: Mutex<Slots<O::Conn>>,
    returned: Condvar,
}

impl<O: Open> Pool<O> {
    pub(crate) fn new(opener: O, max: u32, wait: Duration) -> Pool<O> {
        Pool {
            opener,
            max: max.max(1),
            wait,
            slots: Mutex::new(Slots {
                idle: Vec::new(),
                open: 0,
                waiting: 0,
            }),
            returned: Condvar::new(),
        }
    }

    fn slots(&self) -> MutexGuard<'_, Slots<O::Conn>> {
        // The slots are consistent whenever the lock is released, even by a panic.
        self.slots.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Releases `slots` and wakes one caller waiting for a connection, if any.
    fn wake_one(&self, slots: MutexGuard<'_, Slots<O::Conn>>) {
        let waiting = slots.waiting > 0;
        drop(slots);
        if waiting {
            self.returned.notify_one();
        }
    }

    /// A connection for one operation; it goes back to the pool when dropped.
    pub(crate) fn get(&self) -> Result<Pooled<'_, O>> {
        let deadline = Instant::now() + self.wait;
        let mut slots = self.slots();
        loop {
            if let Some(conn) = slots.idle.pop() {
                return Ok(Pooled {
                    pool: self,
                    conn: Some(conn),
                });
            }
            if slots.open < self.max {
                slots.open += 1;
                drop(slots);
                let mut opening = Opening {
                    pool: self,
                    done: false,
                };
                let conn = self.opener.open()?;
                opening.done = true;
                return Ok(Pooled {
                    pool: self,
                    conn: Some(conn),
                });
            }
            let left = deadline.saturating_duration_since(Instant::now());
            if left.is_zero() {
                return Err(Error::Pool(format!(
                    "all {} connections stayed in use for {:?}",
                    self.max, self.wait
                )));
            }
            slots.waiting += 1;
            slots = self
                .returned
                .wait_timeout(slots, left)
                .unwrap_or_else(|e| e.into_inner())
                .0;
            slots.waiting -= 1;
        }
    }
}

/// Gives a slot taken for opening a connection back unless the open succeeded: after an
/// error and after a panic alike.
struct Opening<'p, O: Open> {
    pool: &'p Pool<O>,
    done: bool,
}

impl<O: Open> Drop for Opening<'_, O> {
    fn drop(&mut self) {
        if !self.done {
            let mut slots = self.pool.slots();
            slots.open -= 1;
            self.pool.wake_one(slots);
        }
    }
}

/// A connection checked out of a [`Pool`].
pub(crate) struct Pooled<'p, O: Open> {
    pool: &'p Pool<O>,
    conn: Option<O::Conn>,
}

impl<O: Open> std::ops::Deref for Pooled<'_, O> {
    type Target = O::Conn;
    fn deref(&self) -> &O::Conn {
        // Only `drop` takes the connection out.
        self.conn.as_ref().unwrap_or_else(|| unreachable!())
    }
}

impl<O: Open> std::ops::DerefMut for Pooled<'_, O> {
    fn deref_mut(&mut self) -> &mut O::Conn {
        self.conn.as_mut().unwrap_or_else(|| unreachable!())
    }
}

impl<O: Open> Drop for Pooled<'_, O> {
    fn drop(&mut self) {
        if let Some(conn) = self.conn.take() {
            let mut slots = self.pool.slots();
            if O::reusable(&conn) {
                slots.idle.push(conn);
            } else {
                slots.open -= 1;
            }
            self.pool.wake_one(slots);
        }
    }
}
