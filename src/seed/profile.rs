//! Seed profiles: the shape of the data per account, read from `seed/*.toml` (compiled in).

use std::fmt;

use serde::Deserialize;

use super::{Result, SeedError};
use crate::tenant::echo;

/// The profiles in seed/, compiled into the binary: `(name, TOML text)`.
const BUILTIN: &[(&str, &str)] = &[
    ("reference", include_str!("../../seed/reference.toml")),
    ("small", include_str!("../../seed/small.toml")),
];

/// The most rows one level may hold per parent; bounds the memory one account needs.
const MAX_PER_LEVEL: u32 = 10_000;

/// The most subtasks one account may hold at worst (projects × tasks × subtasks); accounts
/// are generated whole in memory, so this bounds the seeder's memory.
const MAX_SUBTASKS_PER_ACCOUNT: u64 = 200_000;

/// A level of the generated data, each with its count range in a [`Distribution`].
///
/// ```
/// use rls_tenancy::SeedLevel;
/// assert_eq!(SeedLevel::Tasks.min_flag(), "--min-tasks");
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum SeedLevel {
    /// Users per account.
    Users,
    /// Projects per account.
    Projects,
    /// Tasks per project (one count drawn per account).
    Tasks,
    /// Subtasks per task (one count drawn per account).
    Subtasks,
}

impl SeedLevel {
    /// Every level, parents first.
    pub const ALL: [SeedLevel; 4] = [Self::Users, Self::Projects, Self::Tasks, Self::Subtasks];

    /// The command-line flag that overrides this level's minimum.
    ///
    /// ```
    /// assert_eq!(rls_tenancy::SeedLevel::Users.min_flag(), "--min-users");
    /// ```
    pub fn min_flag(self) -> &'static str {
        match self {
            Self::Users => "--min-users",
            Self::Projects => "--min-projects",
            Self::Tasks => "--min-tasks",
            Self::Subtasks => "--min-subtasks",
        }
    }

    /// The command-line flag that overrides this level's maximum.
    ///
    /// ```
    /// assert_eq!(rls_tenancy::SeedLevel::Users.max_flag(), "--max-users");
    /// ```
    pub fn max_flag(self) -> &'static str {
        match self {
            Self::Users => "--max-users",
            Self::Projects => "--max-projects",
            Self::Tasks => "--max-tasks",
            Self::Subtasks => "--max-subtasks",
        }
    }

    fn index(self) -> usize {
        self as usize
    }
}

/// An inclusive range of counts, `min..=max`, with `max >= 1` and `min <= max`.
///
/// ```
/// use rls_tenancy::{CountRange, SeedLevel};
/// let range = CountRange::new(SeedLevel::Users, 1, 5)?;
/// assert_eq!((range.min(), range.max()), (1, 5));
/// assert!(CountRange::new(SeedLevel::Users, 5, 1).is_err());
/// assert!(CountRange::new(SeedLevel::Users, -1, 5).is_err());
/// assert!(CountRange::new(SeedLevel::Users, 0, 0).is_err());
/// # Ok::<(), rls_tenancy::SeedError>(())
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct CountRange {
    min: u32,
    max: u32,
}

impl CountRange {
    /// Validates a range for `level`, as given on the command line or in a profile.
    ///
    /// # Errors
    /// [`SeedError::InvalidOption`] naming the flag when `min` is negative, `max` is below 1
    /// or above 10000, or `min > max`.
    ///
    /// ```
    /// # use rls_tenancy::{CountRange, SeedLevel};
    /// let err = CountRange::new(SeedLevel::Tasks, 7, 3).unwrap_err();
    /// assert_eq!(err.to_string(), "invalid --min-tasks: 7 is greater than --max-tasks 3");
    /// ```
    pub fn new(level: SeedLevel, min: i64, max: i64) -> Result<Self> {
        let invalid = |option, reason| Err(SeedError::InvalidOption { option, reason });
        let cap = i64::from(MAX_PER_LEVEL);
        if min < 0 {
            return invalid(
                level.min_flag(),
                format!("{min} is negative: use 0 or more"),
            );
        }
        if max < 1 {
            return invalid(
                level.max_flag(),
                format!("{max} would make no rows at this level: use 1 or more"),
            );
        }
        if max > cap {
            return invalid(
                level.max_flag(),
                format!("{max} is more than the limit {cap}"),
            );
        }
        if min > max {
            return invalid(
                level.min_flag(),
                format!("{min} is greater than {} {max}", level.max_flag()),
            );
        }
        // Both are within 0..=MAX_PER_LEVEL here.
        Ok(Self {
            min: u32::try_from(min).unwrap_or(MAX_PER_LEVEL),
            max: u32::try_from(max).unwrap_or(MAX_PER_LEVEL),
        })
    }

    /// The smallest count.
    ///
    /// ```
    /// # use rls_tenancy::{CountRange, SeedLevel};
    /// assert_eq!(CountRange::new(SeedLevel::Users, 2, 3)?.min(), 2);
    /// # Ok::<(), rls_tenancy::SeedError>(())
    /// ```
    pub fn min(self) -> u32 {
        self.min
    }

    /// The largest count.
    ///
    /// ```
    /// # use rls_tenancy::{CountRange, SeedLevel};
    /// assert_eq!(CountRange::new(SeedLevel::Users, 2, 3)?.max(), 3);
    /// # Ok::<(), rls_tenancy::SeedError>(())
    /// ```
    pub fn max(self) -> u32 {
        self.max
    }
}

impl fmt::Display for CountRange {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}-{}", self.min, self.max)
    }
}

/// The count ranges of every level: the shape of one account.
///
/// ```
/// use rls_tenancy::{SeedLevel, SeedProfile};
/// let reference = SeedProfile::builtin("reference")?;
/// let projects = reference.distribution().range(SeedLevel::Projects);
/// assert_eq!((projects.min(), projects.max()), (1, 30));
/// # Ok::<(), rls_tenancy::SeedError>(())
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Distribution {
    ranges: [CountRange; 4],
}

impl Distribution {
    /// The range of `level`.
    ///
    /// ```
    /// # use rls_tenancy::{SeedLevel, SeedProfile};
    /// let users = SeedProfile::builtin("reference")?.distribution().range(SeedLevel::Users);
    /// assert_eq!(users.to_string(), "1-5");
    /// # Ok::<(), rls_tenancy::SeedError>(())
    /// ```
    pub fn range(&self, level: SeedLevel) -> CountRange {
        self.ranges[level.index()]
    }

    /// This distribution with `level`'s minimum and/or maximum replaced, validated again.
    ///
    /// # Errors
    /// As [`CountRange::new`], and [`SeedError::InvalidOption`] when one account could hold
    /// more than 200000 subtasks.
    ///
    /// ```
    /// # use rls_tenancy::{SeedLevel, SeedProfile};
    /// let d = SeedProfile::builtin("reference")?.distribution().with(SeedLevel::Users, None, Some(2))?;
    /// assert_eq!(d.range(SeedLevel::Users).max(), 2);
    /// assert!(d.with(SeedLevel::Users, Some(3), None).is_err()); // 3 > 2
    /// # Ok::<(), rls_tenancy::SeedError>(())
    /// ```
    pub fn with(&self, level: SeedLevel, min: Option<i64>, max: Option<i64>) -> Result<Self> {
        let current = self.range(level);
        let range = CountRange::new(
            level,
            min.unwrap_or(i64::from(current.min)),
            max.unwrap_or(i64::from(current.max)),
        )?;
        let mut ranges = self.ranges;
        ranges[level.index()] = range;
        Self::checked(ranges)
    }

    fn checked(ranges: [CountRange; 4]) -> Result<Self> {
        let worst = ranges[1..]
            .iter()
            .map(|r| u64::from(r.max))
            .product::<u64>();
        if worst > MAX_SUBTASKS_PER_ACCOUNT {
            return Err(SeedError::InvalidOption {
                option: SeedLevel::Subtasks.max_flag(),
                reason: format!(
                    "one account could hold {worst} subtasks (max projects × max tasks × max subtasks); \
                     lower a maximum so that it is at most {MAX_SUBTASKS_PER_ACCOUNT}"
                ),
            });
        }
        Ok(Self { ranges })
    }
}

/// A named seed profile from seed/: a description and a [`Distribution`].
///
/// ```
/// use rls_tenancy::SeedProfile;
/// assert!(SeedProfile::names().contains(&"reference"));
/// assert!(SeedProfile::builtin("nope").is_err());
/// ```
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SeedProfile {
    name: String,
    description: String,
    distribution: Distribution,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawProfile {
    description: String,
    users: RawRange,
    projects: RawRange,
    tasks: RawRange,
    subtasks: RawRange,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawRange {
    min: i64,
    max: i64,
}

impl SeedProfile {
    /// The names of the profiles compiled in from seed/.
    ///
    /// ```
    /// assert_eq!(rls_tenancy::SeedProfile::names(), vec!["reference", "small"]);
    /// ```
    pub fn names() -> Vec<&'static str> {
        BUILTIN.iter().map(|(name, _)| *name).collect()
    }

    /// The profile `seed/{name}.toml`.
    ///
    /// # Errors
    /// [`SeedError::UnknownProfile`] when there is none of that name,
    /// [`SeedError::InvalidProfile`] when its file is malformed.
    ///
    /// ```
    /// let small = rls_tenancy::SeedProfile::builtin("small")?;
    /// assert_eq!(small.name(), "small");
    /// # Ok::<(), rls_tenancy::SeedError>(())
    /// ```
    pub fn builtin(name: &str) -> Result<Self> {
        let (_, text) =
            BUILTIN
                .iter()
                .find(|(n, _)| *n == name)
                .ok_or_else(|| SeedError::UnknownProfile {
                    name: echo(name),
                    known: Self::names().join(", "),
                })?;
        Self::parse(name, text)
    }

    /// Parses and validates a profile's TOML text.
    ///
    /// # Errors
    /// [`SeedError::InvalidProfile`] when the text is not a valid profile.
    ///
    /// ```
    /// use rls_tenancy::SeedProfile;
    /// let text = "description = \"x\"\n[users]\nmin = 1\nmax = 2\n[projects]\nmin = 1\nmax = 2\n\
    ///             [tasks]\nmin = 0\nmax = 2\n[subtasks]\nmin = 0\nmax = 2\n";
    /// assert!(SeedProfile::parse("tiny", text).is_ok());
    /// let err = SeedProfile::parse("bad", &text.replace("min = 0\nmax = 2\n[subtasks]", "min = 3\nmax = 2\n[subtasks]")).unwrap_err();
    /// assert!(err.to_string().contains("3 is greater than"));
    /// ```
    pub fn parse(name: &str, text: &str) -> Result<Self> {
        let invalid = |reason: String| SeedError::InvalidProfile {
            name: echo(name),
            reason,
        };
        let raw: RawProfile = toml::from_str(text).map_err(|e| invalid(e.message().to_owned()))?;
        let mut ranges = [CountRange { min: 0, max: 1 }; 4];
        let given = [&raw.users, &raw.projects, &raw.tasks, &raw.subtasks];
        for (level, raw_range) in SeedLevel::ALL.into_iter().zip(given) {
            ranges[level.index()] = CountRange::new(level, raw_range.min, raw_range.max)
                .map_err(|e| invalid(profile_reason(&e)))?;
        }
        let distribution =
            Distribution::checked(ranges).map_err(|e| invalid(profile_reason(&e)))?;
        Ok(Self {
            name: name.to_owned(),
            description: raw.description,
            distribution,
        })
    }

    /// The profile's name (its file name without `.toml`).
    ///
    /// ```
    /// assert_eq!(rls_tenancy::SeedProfile::builtin("reference")?.name(), "reference");
    /// # Ok::<(), rls_tenancy::SeedError>(())
    /// ```
    pub fn name(&self) -> &str {
        &self.name
    }

    /// The profile's one-line description.
    ///
    /// ```
    /// assert!(!rls_tenancy::SeedProfile::builtin("reference")?.description().is_empty());
    /// # Ok::<(), rls_tenancy::SeedError>(())
    /// ```
    pub fn description(&self) -> &str {
        &self.description
    }

    /// The profile's count ranges.
    ///
    /// ```
    /// use rls_tenancy::{SeedLevel, SeedProfile};
    /// let d = SeedProfile::builtin("reference")?.distribution();
    /// assert_eq!(d.range(SeedLevel::Subtasks).to_string(), "1-10");
    /// # Ok::<(), rls_tenancy::SeedError>(())
    /// ```
    pub fn distribution(&self) -> Distribution {
        self.distribution
    }
}

/// Rewords a flag-oriented validation error for a profile file (`users.min` for `--min-users`).
fn profile_reason(err: &SeedError) -> String {
    match err {
        SeedError::InvalidOption { option, reason } => {
            let field = option
                .trim_start_matches("--")
                .split_once('-')
                .map(|(bound, level)| format!("{level}.{bound}"))
                .unwrap_or_else(|| (*option).to_owned());
            let reason = SeedLevel::ALL.iter().fold(reason.clone(), |r, level| {
                r.replace(level.max_flag(), &format!("{}.max", level_name(*level)))
            });
            format!("{field}: {reason}")
        }
        other => other.to_string(),
    }
}

fn level_name(level: SeedLevel) -> &'static str {
    match level {
        SeedLevel::Users => "users",
        SeedLevel::Projects => "projects",
        SeedLevel::Tasks => "tasks",
        SeedLevel::Subtasks => "subtasks",
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_builtin_profile_is_valid() {
        for name in SeedProfile::names() {
            assert!(SeedProfile::builtin(name).is_ok(), "{name} should be valid");
        }
    }

    #[test]
    fn the_reference_profile_has_the_reference_distribution() {
        let d = SeedProfile::builtin("reference").map(|p| p.distribution());
        let ranges = d.map(|d| SeedLevel::ALL.map(|l| d.range(l).to_string()));
        assert_eq!(
            ranges.ok(),
            Some(["1-5", "1-30", "1-10", "1-10"].map(String::from))
        );
    }

    #[test]
    fn profile_errors_name_the_field_not_the_flag() {
        let text = "description = \"x\"\n[users]\nmin = 4\nmax = 2\n[projects]\nmin = 1\nmax = 2\n\
                    [tasks]\nmin = 1\nmax = 2\n[subtasks]\nmin = 1\nmax = 2\n";
        let err = SeedProfile::parse("bad", text).err().map(|e| e.to_string());
        assert_eq!(
            err.as_deref(),
            Some(
                "invalid seed profile \"bad\": users.min: 4 is greater than users.max 2; fix seed/bad.toml"
            )
        );
    }

    #[test]
    fn unknown_fields_and_unknown_names_are_refused() {
        let text = "description = \"x\"\nextra = 1\n";
        assert!(SeedProfile::parse("x", text).is_err());
        let err = SeedProfile::builtin("../etc/passwd").err();
        assert!(err.as_ref().is_some_and(SeedError::is_usage));
        assert!(err.is_some_and(|e| e.to_string().contains("reference, small")));
    }

    #[test]
    fn an_account_that_could_not_fit_in_memory_is_refused() {
        let d = SeedProfile::builtin("reference").map(|p| p.distribution());
        let too_big = d.and_then(|d| d.with(SeedLevel::Subtasks, None, Some(10_000)));
        assert!(matches!(too_big, Err(SeedError::InvalidOption { .. })));
    }
}
