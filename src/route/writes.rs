//! Which tasks have a write transaction open, so that their reads stay on the primary.

use std::collections::HashMap;
use std::sync::{Arc, Mutex, PoisonError};

use std::thread::ThreadId;

use tokio::task::Id;

/// Who opened a write transaction: a tokio task, or (outside any task: a `block_on`, a
/// test's body) the thread, which such a future never leaves.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
enum Opener {
    Task(Id),
    Thread(ThreadId),
}

impl Opener {
    fn running() -> Self {
        tokio::task::try_id()
            .map_or_else(|| Opener::Thread(std::thread::current().id()), Opener::Task)
    }
}

/// The open write transactions of a pool, counted per tokio task.
#[derive(Debug, Default)]
pub(crate) struct OpenWrites {
    by_task: Mutex<HashMap<Opener, usize>>,
}

impl OpenWrites {
    /// Counts a write transaction opened by the running task, until the mark is dropped.
    pub(crate) fn open(self: &Arc<Self>) -> WriteMark {
        let task = Opener::running();
        *self.lock().entry(task).or_default() += 1;
        WriteMark {
            writes: Arc::clone(self),
            task,
        }
    }

    /// Whether the running task has a write transaction open.
    pub(crate) fn in_running_task(&self) -> bool {
        self.lock().contains_key(&Opener::running())
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<Opener, usize>> {
        self.by_task.lock().unwrap_or_else(PoisonError::into_inner)
    }
}

/// A write transaction being open; dropping it ends the count.
#[derive(Debug)]
pub(crate) struct WriteMark {
    writes: Arc<OpenWrites>,
    task: Opener,
}

impl Drop for WriteMark {
    fn drop(&mut self) {
        let mut by_task = self.writes.lock();
        if let Some(n) = by_task.get_mut(&self.task) {
            *n -= 1;
            if *n == 0 {
                by_task.remove(&self.task);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn a_task_counts_as_writing_while_a_mark_lives() {
        let writes = Arc::new(OpenWrites::default());
        assert!(!writes.in_running_task());
        let outer = writes.open();
        let inner = writes.open();
        assert!(writes.in_running_task());
        drop(inner);
        assert!(writes.in_running_task(), "one write is still open");
        let other = Arc::clone(&writes);
        let elsewhere = tokio::spawn(async move { other.in_running_task() }).await;
        assert_eq!(elsewhere.ok(), Some(false), "another task is not writing");
        drop(outer);
        assert!(!writes.in_running_task());
    }
}
