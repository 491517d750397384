//! Progress on stderr with indicatif, and only on a terminal: a bar for directory scans of
//! more than [`BAR_THRESHOLD`] files, a spinner naming each AIA URL being fetched. Scripts and
//! pipes never see either.

use std::io::IsTerminal;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::OnceLock;
use std::time::Duration;

use indicatif::{ProgressBar, ProgressStyle};

use crate::load::Progress;

/// Scans smaller than this finish before a bar is worth drawing.
pub const BAR_THRESHOLD: usize = 1000;

fn on_terminal() -> bool {
    std::io::stderr().is_terminal()
}

/// A bar for reading many files.
#[derive(Default)]
pub(super) struct FileBar {
    bar: OnceLock<ProgressBar>,
    /// Files done before the bar existed (reading starts while the walk still runs).
    done: AtomicU64,
}

impl Progress for FileBar {
    fn start(&self, total: usize) {
        if total < BAR_THRESHOLD || !on_terminal() {
            return;
        }
        let bar = ProgressBar::new(total as u64);
        if let Ok(style) = ProgressStyle::with_template("{bar:40} {pos}/{len} files  {elapsed}") {
            bar.set_style(style);
        }
        let bar = self.bar.get_or_init(|| bar);
        bar.set_position(self.done.load(Ordering::Relaxed));
    }

    fn advance(&self) {
        let done = self.done.fetch_add(1, Ordering::Relaxed) + 1;
        if let Some(bar) = self.bar.get() {
            bar.set_position(done);
        }
    }

    fn finish(&self) {
        if let Some(bar) = self.bar.get() {
            bar.finish_and_clear();
        }
    }
}

/// A spinner that shows which AIA URL is being fetched; `None` when stderr is not a terminal.
pub(super) fn fetch_spinner() -> Option<ProgressBar> {
    if !on_terminal() {
        return None;
    }
    let spinner = ProgressBar::new_spinner();
    if let Ok(style) = ProgressStyle::with_template("{spinner} fetching {msg}") {
        spinner.set_style(style);
    }
    spinner.enable_steady_tick(Duration::from_millis(120));
    Some(spinner)
}
