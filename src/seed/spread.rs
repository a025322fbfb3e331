//! [`seed_placement`]: which server each seeded tenant's database goes to (the database strategy).
//!
//! The rule depends on nothing but the number of accounts and the server list, so the same
//! `--accounts N` over the same servers puts every tenant on the same server, run after run
//! and on resume: **`tenant-i` goes to the server at position `i mod S` in the order the
//! servers are given (S servers); a server that already holds its `max_tenants` of this
//! seed's tenants passes its turn to the next server in order with room.** Without limits
//! that is plain round-robin: `tenant-0` on the first server, `tenant-1` on the second, ….

use super::{Result, SeedError};
use crate::connect::{Server, ServerSet};

/// The server of each account `0 .. accounts`, by [the rule](self).
///
/// # Errors
/// [`SeedError::InvalidOption`] (`--accounts`) when the servers' `max_tenants` leave room
/// for fewer than `accounts` tenants, or when no server is given.
///
/// ```
/// use rls_tenancy::{ServerSet, seed_placement};
/// let servers = ServerSet::parse_config(r#"
///     [[server]]
///     name = "eu1"
///     url = "postgres://app@db1/postgres"
///     max_tenants = 1
///     [[server]]
///     name = "eu2"
///     url = "postgres://app@db2/postgres"
/// "#)?;
/// let on: Vec<String> = seed_placement(4, &servers)?.iter().map(|s| s.name().to_string()).collect();
/// assert_eq!(on, ["eu1", "eu2", "eu2", "eu2"]); // eu1 is full after tenant-0
/// assert!(seed_placement(3, &ServerSet::parse_config(r#"
///     [[server]]
///     name = "eu1"
///     url = "postgres://app@db1/postgres"
///     max_tenants = 2
/// "#)?).is_err());
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
pub fn seed_placement(accounts: u64, servers: &ServerSet) -> Result<Vec<&Server>> {
    let servers: Vec<&Server> = servers.iter().collect();
    let room: Option<u64> = servers
        .iter()
        .map(|s| s.tenant_limit().map(u64::from))
        .sum();
    if servers.is_empty() || room.is_some_and(|room| room < accounts) {
        return Err(SeedError::InvalidOption {
            option: "--accounts",
            reason: format!(
                "{accounts} tenants do not fit on the servers: their max_tenants allow {}; name more servers or raise max_tenants",
                room.unwrap_or(0)
            ),
        });
    }
    let mut held = vec![0_u64; servers.len()];
    let has_room = |s: &Server, held: u64| s.tenant_limit().is_none_or(|max| held < u64::from(max));
    (0..accounts)
        .map(|index| {
            let turn = (index % servers.len() as u64) as usize;
            let chosen = (0..servers.len())
                .map(|step| (turn + step) % servers.len())
                .find(|&at| has_room(servers[at], held[at]))
                .ok_or_else(|| {
                    SeedError::Task("no server with room (a bug in seed_placement)".into())
                })?;
            held[chosen] += 1;
            Ok(servers[chosen])
        })
        .collect()
}
