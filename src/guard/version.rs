//! The server's release against a floor of known row-level security fixes (see
//! [`super::GuardOptions`] for the default floors and the CVEs behind them).

use super::Ctx;
use super::finding::{Finding, RuleId};
use super::options::Shortfall;

pub(super) fn check(ctx: &Ctx<'_>) -> Option<Finding> {
    let version = ctx.session.version;
    let shown = version.to_string();
    let message = match ctx.options.shortfall(version)? {
        Shortfall::Minor(floor) => format!(
            "the server runs PostgreSQL {shown}, older than {floor}, the first {}.x release with every known row-level security fix",
            floor.major
        ),
        Shortfall::Major(oldest) => format!(
            "the server runs PostgreSQL {shown}, a major version older than {oldest}, which no longer gets row-level security fixes"
        ),
    };
    Some(Finding::new(
        RuleId::ServerVersionBelowFloor,
        format!("server {shown}"),
        message,
        "-- upgrade the server to the latest minor release of its major version",
    ))
}
