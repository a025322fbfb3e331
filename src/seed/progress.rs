//! The progress bar: accounts done, rows per second and the time left, on a terminal only.

use std::io::IsTerminal;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

use indicatif::{ProgressBar, ProgressDrawTarget, ProgressState, ProgressStyle};

/// Feedback while seeding. Hidden when not asked for or when stderr is not a terminal, so
/// logs and pipes stay clean.
#[derive(Debug, Clone)]
pub(crate) struct Progress {
    bar: ProgressBar,
    rows: Arc<AtomicU64>,
}

impl Progress {
    pub(crate) fn new(accounts: u64, wanted: bool) -> Self {
        let rows = Arc::new(AtomicU64::new(0));
        let target = if wanted && std::io::stderr().is_terminal() {
            ProgressDrawTarget::stderr_with_hz(4)
        } else {
            ProgressDrawTarget::hidden()
        };
        let bar = ProgressBar::with_draw_target(Some(accounts), target);
        let counter = Arc::clone(&rows);
        let rate = move |state: &ProgressState, w: &mut dyn std::fmt::Write| {
            let seconds = state.elapsed().as_secs_f64();
            let rows = counter.load(Ordering::Relaxed) as f64;
            let per_second = if seconds > 0.0 { rows / seconds } else { 0.0 };
            let _ = write!(w, "{:.0}k rows/s", per_second / 1000.0);
        };
        // The template is a constant; should it ever fail to parse, the default style remains.
        if let Ok(style) = ProgressStyle::with_template(
            "{elapsed:>4} [{bar:30}] {pos}/{len} accounts · {rate} · ETA {eta}",
        ) {
            bar.set_style(style.with_key("rate", rate).progress_chars("=> "));
        }
        Self { bar, rows }
    }

    /// One account committed (or rolled back with `--rollback`) with `rows` rows.
    pub(crate) fn account_done(&self, rows: u64) {
        self.rows.fetch_add(rows, Ordering::Relaxed);
        self.bar.inc(1);
    }

    /// Removes the bar so the final report stands alone.
    pub(crate) fn finish(&self) {
        self.bar.finish_and_clear();
    }
}
