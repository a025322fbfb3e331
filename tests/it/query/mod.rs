//! The scoped query builder: the SQL it writes, what it returns against a real database with
//! row-level security out of the way, and what it refuses.

mod filters;
mod functions;
mod global;
mod locks;
mod refusals;
mod selects;
mod shapes;
mod streams;
mod upserts;
mod writes;

use std::collections::BTreeMap;

use rls_tenancy::sea_query::Value;
use rls_tenancy::{Result, Statement, TenantId};

/// Asserts that every tenant table the SQL references (`"app"."table" [AS "alias"]`) has a
/// `"name"."account_id" = $n` predicate whose bound value is `tenant`, at least as many times
/// as the name is referenced.
pub(crate) fn assert_every_table_scoped<St>(statement: &St, tenant: TenantId) -> Result<()>
where
    St: Statement + ?Sized,
{
    let gaps = scoping_gaps(statement, tenant)?;
    assert!(gaps.is_empty(), "{gaps:#?}");
    Ok(())
}

/// What [`assert_every_table_scoped`] finds missing, in words.
pub(crate) fn scoping_gaps<St>(statement: &St, tenant: TenantId) -> Result<Vec<String>>
where
    St: Statement + ?Sized,
{
    let mut gaps = Vec::new();
    let (sql, values) = statement.build()?;
    let mut references: BTreeMap<String, usize> = BTreeMap::new();
    let mut rest = sql.as_str();
    while let Some(at) = rest.find(r#""app".""#) {
        rest = &rest[at + r#""app".""#.len()..];
        let (table, after) = quoted(rest);
        let name = match after.strip_prefix(r#" AS ""#) {
            Some(aliased) => quoted(aliased).0,
            None => table,
        };
        *references.entry(name.to_owned()).or_default() += 1;
    }
    if references.is_empty() {
        gaps.push(format!("no tenant table in {sql}"));
    }
    for (name, count) in references {
        let needle = format!(r#""{name}"."account_id" = $"#);
        let mut predicates = 0;
        for (at, _) in sql.match_indices(&needle) {
            let digits: String = sql[at + needle.len()..]
                .chars()
                .take_while(char::is_ascii_digit)
                .collect();
            let index: usize = digits.parse().unwrap_or(0);
            let bound = index.checked_sub(1).and_then(|i| values.0.0.get(i));
            if bound == Some(&Value::BigInt(tenant.as_i64())) {
                predicates += 1;
            } else {
                gaps.push(format!("${index} of {name} is not the tenant in {sql}"));
            }
        }
        if predicates < count {
            gaps.push(format!(
                "{name} is referenced {count} times but scoped {predicates} times in {sql}"
            ));
        }
    }
    Ok(gaps)
}

/// Splits `name"rest` into `name` and `rest`.
fn quoted(s: &str) -> (&str, &str) {
    match s.find('"') {
        Some(end) => (&s[..end], &s[end + 1..]),
        None => (s, ""),
    }
}
