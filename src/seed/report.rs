//! What a seeding run did, printed as the reference prints it.

use std::fmt;
use std::time::Duration;

use super::generate::AccountCounts;

/// The counts of one [`crate::seed()`] run: rows written by this run (rolled back again with
/// `--rollback`), and how long it took.
///
/// It displays as the reference command prints its counts, plus the elapsed time:
///
/// ```
/// let report = rls_tenancy::SeedReport::default();
/// assert!(report.to_string().starts_with("Accounts: 0\nUsers: 0\nProjects: 0\nTasks: 0\nSubtasks: 0\n"));
/// ```
#[derive(Debug, Clone, Default, PartialEq, Eq)]
#[non_exhaustive]
pub struct SeedReport {
    /// Accounts created by this run.
    pub accounts: u64,
    /// Users created.
    pub users: u64,
    /// Projects created.
    pub projects: u64,
    /// Tasks created.
    pub tasks: u64,
    /// Subtasks created.
    pub subtasks: u64,
    /// Accounts that already existed and were left alone (`--resume`).
    pub already_present: u64,
    /// Whether every account was rolled back (`--rollback`).
    pub rolled_back: bool,
    /// Wall time of the whole run.
    pub elapsed: Duration,
}

impl SeedReport {
    pub(crate) fn add_account(&mut self, counts: &AccountCounts) {
        self.accounts += 1;
        self.users += counts.users;
        self.projects += counts.projects;
        self.tasks += counts.tasks;
        self.subtasks += counts.subtasks;
    }

    pub(crate) fn merge(&mut self, other: &SeedReport) {
        self.accounts += other.accounts;
        self.users += other.users;
        self.projects += other.projects;
        self.tasks += other.tasks;
        self.subtasks += other.subtasks;
    }

    /// Every row this run wrote, account rows included.
    ///
    /// ```
    /// assert_eq!(rls_tenancy::SeedReport::default().rows(), 0);
    /// ```
    pub fn rows(&self) -> u64 {
        self.accounts + self.users + self.projects + self.tasks + self.subtasks
    }
}

impl fmt::Display for SeedReport {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        writeln!(f, "Accounts: {}", self.accounts)?;
        writeln!(f, "Users: {}", self.users)?;
        writeln!(f, "Projects: {}", self.projects)?;
        writeln!(f, "Tasks: {}", self.tasks)?;
        writeln!(f, "Subtasks: {}", self.subtasks)?;
        if self.already_present > 0 {
            writeln!(f, "Already present: {} (left alone)", self.already_present)?;
        }
        if self.rolled_back {
            writeln!(f, "Rolled back: nothing was committed")?;
        }
        let seconds = self.elapsed.as_secs_f64();
        let rate = if seconds > 0.0 {
            self.rows() as f64 / seconds
        } else {
            0.0
        };
        write!(f, "Elapsed: {seconds:.2}s ({rate:.0} rows/s)")
    }
}
