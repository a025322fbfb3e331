//! Deterministic fake data, one account at a time.
//!
//! Account `i` of a run with seed `s` is drawn from its own ChaCha8 stream (key from `s`,
//! stream number `i`), so accounts can be generated in any order, on any thread, and still
//! come out byte-identical. Nothing reads the clock: dates are relative to [`EPOCH`].
//! The counts are the first draws of the stream, so [`Generator::counts`] can plan ids for
//! every account without generating any text.

use chrono::{DateTime, Duration, TimeZone, Utc};
use fake::Fake;
use fake::faker::boolean::raw::Boolean;
use fake::faker::chrono::raw::DateTimeBetween;
use fake::faker::company::raw::{CatchPhrase, CompanyName};
use fake::faker::lorem::raw::Word;
use fake::faker::name::raw::{FirstName, LastName};
use fake::locales::EN;
use rand::{RngExt, SeedableRng};
use rand_chacha::ChaCha8Rng;

use super::profile::{Distribution, SeedLevel};

/// The instant generated dates are relative to (2025-01-01T00:00:00Z), never `now()`.
pub(crate) fn epoch() -> DateTime<Utc> {
    Utc.timestamp_opt(1_735_689_600, 0)
        .single()
        .unwrap_or(DateTime::UNIX_EPOCH)
}

/// How far before the epoch accounts were created: up to three years.
const ACCOUNT_AGE_DAYS: i64 = 3 * 365;

/// The longest task and subtask name (the columns are `varchar(200)`).
const NAME_MAX_CHARS: usize = 200;

/// The rows of each table one account gets.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub(crate) struct AccountCounts {
    pub(crate) users: u64,
    pub(crate) projects: u64,
    pub(crate) tasks: u64,
    pub(crate) subtasks: u64,
}

impl AccountCounts {
    /// Rows in tenant tables plus the account row.
    pub(crate) fn rows(&self) -> u64 {
        1 + self.users + self.projects + self.tasks + self.subtasks
    }

    pub(crate) fn add(&mut self, other: &AccountCounts) {
        self.users += other.users;
        self.projects += other.projects;
        self.tasks += other.tasks;
        self.subtasks += other.subtasks;
    }
}

/// The first id of each table's block for one account; rows take consecutive ids from it.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub(crate) struct IdBases {
    pub(crate) account: i64,
    pub(crate) user: i64,
    pub(crate) project: i64,
    pub(crate) task: i64,
    pub(crate) subtask: i64,
}

/// One generated account, column by column (the shape the bulk insert binds).
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct AccountRows {
    pub(crate) index: u64,
    pub(crate) id: i64,
    pub(crate) slug: String,
    pub(crate) name: String,
    pub(crate) created_at: DateTime<Utc>,
    pub(crate) users: Users,
    pub(crate) projects: Projects,
    pub(crate) tasks: Children,
    pub(crate) subtasks: Children,
}

impl AccountRows {
    pub(crate) fn counts(&self) -> AccountCounts {
        AccountCounts {
            users: self.users.ids.len() as u64,
            projects: self.projects.ids.len() as u64,
            tasks: self.tasks.ids.len() as u64,
            subtasks: self.subtasks.ids.len() as u64,
        }
    }
}

#[derive(Debug, Clone, Default, PartialEq)]
pub(crate) struct Users {
    pub(crate) ids: Vec<i64>,
    pub(crate) emails: Vec<String>,
    pub(crate) first_names: Vec<String>,
    pub(crate) last_names: Vec<String>,
    pub(crate) passwords: Vec<String>,
    pub(crate) is_active: Vec<bool>,
    pub(crate) date_joined: Vec<DateTime<Utc>>,
}

#[derive(Debug, Clone, Default, PartialEq)]
pub(crate) struct Projects {
    pub(crate) ids: Vec<i64>,
    pub(crate) names: Vec<String>,
    pub(crate) details: Vec<String>,
}

/// Tasks (children of projects) or subtasks (children of tasks).
#[derive(Debug, Clone, Default, PartialEq)]
pub(crate) struct Children {
    pub(crate) ids: Vec<i64>,
    pub(crate) parent_ids: Vec<i64>,
    pub(crate) names: Vec<String>,
    pub(crate) is_complete: Vec<bool>,
    pub(crate) details: Vec<String>,
}

/// Generates accounts for one seed and distribution.
#[derive(Debug, Clone)]
pub(crate) struct Generator {
    key: [u8; 32],
    distribution: Distribution,
}

impl Generator {
    pub(crate) fn new(seed: u64, distribution: Distribution) -> Self {
        let mut key = *b"rls-tenancy seed v1\0\0\0\0\0\0\0\0\0\0\0\0\0";
        key[24..].copy_from_slice(&seed.to_le_bytes());
        Self { key, distribution }
    }

    /// The slug of account `index`.
    pub(crate) fn slug(index: u64) -> String {
        format!("tenant-{index}")
    }

    fn rng(&self, index: u64) -> ChaCha8Rng {
        let mut rng = ChaCha8Rng::from_seed(self.key);
        rng.set_stream(index);
        rng
    }

    fn draw_counts(&self, rng: &mut ChaCha8Rng) -> AccountCounts {
        let mut draw = |level| {
            let range = self.distribution.range(level);
            u64::from(rng.random_range(range.min()..=range.max()))
        };
        let users = draw(SeedLevel::Users);
        let projects = draw(SeedLevel::Projects);
        let tasks = draw(SeedLevel::Tasks) * projects;
        let subtasks = draw(SeedLevel::Subtasks) * tasks;
        AccountCounts {
            users,
            projects,
            tasks,
            subtasks,
        }
    }

    /// The row counts of account `index`, without generating it.
    pub(crate) fn counts(&self, index: u64) -> AccountCounts {
        self.draw_counts(&mut self.rng(index))
    }

    /// The name of account `index`, as [`Generator::account`] gives it, without its rows.
    pub(crate) fn name(&self, index: u64) -> String {
        let rng = &mut self.rng(index);
        self.draw_counts(rng);
        CompanyName(EN).fake_with_rng(rng)
    }

    /// Account `index`, with ids taken consecutively from `ids`.
    pub(crate) fn account(&self, index: u64, ids: IdBases) -> AccountRows {
        let rng = &mut self.rng(index);
        let counts = self.draw_counts(rng);
        let name: String = CompanyName(EN).fake_with_rng(rng);
        let age = Duration::days(rng.random_range(1..=ACCOUNT_AGE_DAYS));
        let created_at = epoch() - age;
        let users = users(rng, counts.users, ids.user, created_at);
        let projects = projects(rng, counts.projects, ids.project);
        let tasks = children(rng, counts.tasks, ids.task, &projects.ids);
        let subtasks = children(rng, counts.subtasks, ids.subtask, &tasks.ids);
        AccountRows {
            index,
            id: ids.account,
            slug: Self::slug(index),
            name,
            created_at,
            users,
            projects,
            tasks,
            subtasks,
        }
    }
}

fn id_block(base: i64, n: u64) -> Vec<i64> {
    (0..n).map(|i| base + i as i64).collect()
}

fn users(rng: &mut ChaCha8Rng, n: u64, base: i64, created_at: DateTime<Utc>) -> Users {
    let mut users = Users {
        ids: id_block(base, n),
        ..Users::default()
    };
    for i in 0..n {
        let first: &str = FirstName(EN).fake_with_rng(rng);
        let last: &str = LastName(EN).fake_with_rng(rng);
        // Unique within the account: the user's position is part of the address.
        users.emails.push(format!(
            "{}.{}.{}@example.com",
            local_part(first),
            local_part(last),
            i + 1
        ));
        users.first_names.push(first.to_owned());
        users.last_names.push(last.to_owned());
        users.passwords.push(unusable_password(rng));
        users.is_active.push(Boolean(EN, 90).fake_with_rng(rng));
        users
            .date_joined
            .push(DateTimeBetween(EN, created_at, epoch()).fake_with_rng(rng));
    }
    users
}

fn projects(rng: &mut ChaCha8Rng, n: u64, base: i64) -> Projects {
    let mut projects = Projects {
        ids: id_block(base, n),
        ..Projects::default()
    };
    for _ in 0..n {
        projects.names.push(CatchPhrase(EN).fake_with_rng(rng));
        projects.details.push(paragraph(rng));
    }
    projects
}

fn children(rng: &mut ChaCha8Rng, n: u64, base: i64, parents: &[i64]) -> Children {
    let mut children = Children {
        ids: id_block(base, n),
        ..Children::default()
    };
    if parents.is_empty() {
        return children;
    }
    for _ in 0..n {
        // As the reference does: each child belongs to a random parent of the same account.
        children
            .parent_ids
            .push(parents[rng.random_range(0..parents.len())]);
        children.names.push(name(rng));
        children
            .is_complete
            .push(Boolean(EN, 50).fake_with_rng(rng));
        children.details.push(paragraph(rng));
    }
    children
}

/// Lowercase ASCII letters and digits of a name, for an e-mail address.
fn local_part(name: &str) -> String {
    let part: String = name
        .chars()
        .filter(char::is_ascii_alphanumeric)
        .map(|c| c.to_ascii_lowercase())
        .collect();
    if part.is_empty() {
        "user".to_owned()
    } else {
        part
    }
}

/// Django's form of an unusable password: `!` and 40 random characters. Seeded users can
/// never log in, and no guessable credential is stored.
fn unusable_password(rng: &mut ChaCha8Rng) -> String {
    const ALPHABET: &[u8] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789";
    let mut password = String::with_capacity(41);
    password.push('!');
    for _ in 0..40 {
        password.push(char::from(ALPHABET[rng.random_range(0..ALPHABET.len())]));
    }
    password
}

/// Appends a sentence of lorem words from `fake`: capitalised, ending with a period.
fn push_sentence(rng: &mut ChaCha8Rng, words: std::ops::RangeInclusive<usize>, out: &mut String) {
    let n = rng.random_range(words);
    for i in 0..n {
        let word: &str = Word(EN).fake_with_rng(rng);
        if i == 0 {
            let mut chars = word.chars();
            if let Some(first) = chars.next() {
                out.extend(first.to_uppercase());
                out.push_str(chars.as_str());
            }
        } else {
            out.push(' ');
            out.push_str(word);
        }
    }
    out.push('.');
}

/// A task or subtask name: one sentence, mostly short (2 to 8 words), one in ten long (up
/// to 40 words), cut at 200 characters.
fn name(rng: &mut ChaCha8Rng) -> String {
    let words = if rng.random_ratio(1, 10) {
        9..=40
    } else {
        2..=8
    };
    let mut name = String::with_capacity(64);
    push_sentence(rng, words, &mut name);
    if name.chars().count() > NAME_MAX_CHARS {
        // Cut after the last whole word that leaves room for the period.
        let limit = name
            .char_indices()
            .nth(NAME_MAX_CHARS - 1)
            .map_or(name.len(), |(at, _)| at);
        let cut = name[..limit].rfind(' ').unwrap_or(limit);
        name.truncate(cut);
        name.push('.');
    }
    name
}

/// A paragraph of 1 to 4 sentences of 4 to 12 words.
fn paragraph(rng: &mut ChaCha8Rng) -> String {
    let mut text = String::with_capacity(192);
    let sentences = rng.random_range(1..=4);
    for i in 0..sentences {
        if i > 0 {
            text.push(' ');
        }
        push_sentence(rng, 4..=12, &mut text);
    }
    text
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::seed::SeedProfile;

    fn generator(seed: u64) -> super::super::Result<Generator> {
        let profile = SeedProfile::builtin("reference")?;
        Ok(Generator::new(seed, profile.distribution()))
    }

    #[test]
    fn the_same_seed_and_index_give_the_same_account() -> super::super::Result<()> {
        let (a, b) = (generator(7)?, generator(7)?);
        assert_eq!(
            a.account(3, IdBases::default()),
            b.account(3, IdBases::default())
        );
        Ok(())
    }

    #[test]
    fn another_seed_or_index_gives_another_account() -> super::super::Result<()> {
        let (g, other) = (generator(7)?, generator(8)?);
        let a = g.account(3, IdBases::default());
        assert_ne!(a, g.account(4, IdBases::default()));
        assert_ne!(a, other.account(3, IdBases::default()));
        Ok(())
    }

    #[test]
    fn planned_counts_match_the_generated_rows_and_the_distribution() -> super::super::Result<()> {
        let g = generator(1)?;
        for index in 0..50 {
            let rows = g.account(index, IdBases::default());
            let counts = g.counts(index);
            assert_eq!(rows.counts(), counts);
            assert!((1..=5).contains(&counts.users));
            assert!((1..=30).contains(&counts.projects));
            assert_eq!(counts.tasks % counts.projects, 0);
            assert!((1..=10).contains(&(counts.tasks / counts.projects)));
            assert!((1..=10).contains(&(counts.subtasks / counts.tasks)));
        }
        Ok(())
    }

    #[test]
    fn names_fit_and_emails_are_unique_within_an_account() -> super::super::Result<()> {
        let g = generator(2)?;
        for index in 0..50 {
            let rows = g.account(index, IdBases::default());
            let mut emails = rows.users.emails.clone();
            emails.sort();
            emails.dedup();
            assert_eq!(emails.len(), rows.users.emails.len());
            for name in rows.tasks.names.iter().chain(&rows.subtasks.names) {
                assert!(!name.is_empty() && name.chars().count() <= NAME_MAX_CHARS);
            }
            assert!(rows.created_at < epoch());
            let joined = &rows.users.date_joined;
            assert!(
                joined
                    .iter()
                    .all(|d| *d >= rows.created_at && *d <= epoch())
            );
        }
        Ok(())
    }

    #[test]
    fn children_point_at_parents_of_their_own_block() -> super::super::Result<()> {
        let ids = IdBases {
            account: 1,
            user: 10,
            project: 100,
            task: 1_000,
            subtask: 10_000,
        };
        let rows = generator(3)?.account(0, ids);
        assert_eq!(rows.projects.ids.first(), Some(&100));
        assert_eq!(rows.users.ids.first(), Some(&10));
        let (tasks, subtasks) = (&rows.tasks, &rows.subtasks);
        assert!(
            tasks
                .parent_ids
                .iter()
                .all(|p| rows.projects.ids.contains(p))
        );
        assert!(subtasks.parent_ids.iter().all(|p| tasks.ids.contains(p)));
        Ok(())
    }
}
