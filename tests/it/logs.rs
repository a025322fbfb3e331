//! What the library logs, captured for tests that promise a warning.

use std::io::Write;
use std::sync::{Arc, Mutex, Once};

use tracing::subscriber::DefaultGuard;

/// Captures every event at WARN and above logged on this thread (a `#[tokio::test]` runs on
/// one) until dropped.
pub struct Warnings {
    sink: Sink,
    _guard: DefaultGuard,
}

impl Warnings {
    pub fn capture() -> Self {
        keep_warnings_enabled();
        let sink = Sink::default();
        let writer = sink.clone();
        let subscriber = tracing_subscriber::fmt()
            .with_writer(move || writer.clone())
            .with_ansi(false)
            .with_max_level(tracing::Level::WARN)
            .finish();
        Self {
            sink,
            _guard: tracing::subscriber::set_default(subscriber),
        }
    }

    /// Everything logged so far.
    pub fn text(&self) -> String {
        self.sink
            .0
            .lock()
            .map(|log| String::from_utf8_lossy(&log).into_owned())
            .unwrap_or_default()
    }

    /// How many logged lines contain `needle`.
    pub fn count(&self, needle: &str) -> usize {
        self.text().lines().filter(|l| l.contains(needle)).count()
    }
}

/// Installs, once, a process-wide subscriber that keeps nothing. tracing caches each
/// callsite's interest for all threads: without a subscriber that always wants warnings, a
/// warning first reached while no capture is live (or while one is being dropped on another
/// test's thread) is cached as unwanted, and a later capture on this thread misses it.
fn keep_warnings_enabled() {
    static GLOBAL: Once = Once::new();
    GLOBAL.call_once(|| {
        let discard = tracing_subscriber::fmt()
            .with_writer(std::io::sink)
            .with_max_level(tracing::Level::WARN)
            .finish();
        // Err only if another global subscriber exists, which wants events too.
        let _ = tracing::subscriber::set_global_default(discard);
    });
}

#[derive(Clone, Default)]
struct Sink(Arc<Mutex<Vec<u8>>>);

impl Write for Sink {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        if let Ok(mut log) = self.0.lock() {
            log.extend_from_slice(buf);
        }
        Ok(buf.len())
    }

    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}
