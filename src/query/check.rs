//! The expression check: what a caller's `Expr` may contain.
//!
//! Tables enter a statement only through the builder (FROM, JOIN, scoped sub-selects), where
//! the tenant predicate is added. A caller's expression could smuggle one in as a raw
//! sub-select, as custom SQL text or as a function call that runs SQL of its own, so those are
//! refused (functions unless on [`ALLOWED_FUNCTIONS`](super::ALLOWED_FUNCTIONS)), as is
//! anything sea-query does not let us look inside (CASE, aggregate FILTER). Inlined constants
//! are refused because values are always bound, and unsigned values above `i64::MAX` because
//! they cannot be bound.

use sea_query::{BinOper, Expr, Keyword, Value};

use super::QueryError;
use super::functions::check_function;

/// Refuses an expression that could reference a table behind the builder's back, inline a
/// value, or fail to bind.
pub(crate) fn check_expr(expr: &Expr) -> Result<(), QueryError> {
    match expr {
        Expr::Column(_) | Expr::TypeName(_) => Ok(()),
        Expr::Keyword(keyword) => check_keyword(keyword),
        Expr::Value(value) => check_value(value),
        Expr::Values(values) => values.iter().try_for_each(check_value),
        Expr::Tuple(exprs) => exprs.iter().try_for_each(check_expr),
        Expr::Unary(_, inner) | Expr::AsEnum(_, inner) => check_expr(inner),
        Expr::Binary(left, op, right) => {
            check_operator(op)?;
            check_expr(left)?;
            check_expr(right)
        }
        Expr::FunctionCall(call) => {
            check_function(call)?;
            if call.get_filter().is_some() {
                return Err(QueryError::Uncheckable {
                    what: "an aggregate FILTER clause",
                });
            }
            call.get_args().iter().try_for_each(check_expr)
        }
        Expr::SubQuery(..) => Err(QueryError::RawSubquery),
        Expr::Custom(_) | Expr::CustomWithExpr(..) => Err(QueryError::RawSql),
        Expr::Constant(_) => Err(QueryError::InlinedValue),
        Expr::Case(_) => Err(QueryError::Uncheckable {
            what: "a CASE expression",
        }),
        _ => Err(QueryError::Uncheckable {
            what: "this kind of expression",
        }),
    }
}

fn check_keyword(keyword: &Keyword) -> Result<(), QueryError> {
    match keyword {
        Keyword::Null
        | Keyword::CurrentDate
        | Keyword::CurrentTime
        | Keyword::CurrentTimestamp
        | Keyword::Default => Ok(()),
        _ => Err(QueryError::RawSql),
    }
}

/// A custom operator is written into the SQL as is: accept it only when it is made of
/// Postgres operator characters (`@>`, `?|`, `<->`), never words or parentheses, and never
/// a comment opener or closer (`--`, `/*`, `*/`, which Postgres forbids in operator names
/// too): in a one-line statement they would comment out the tenant predicate after them.
fn check_operator(op: &BinOper) -> Result<(), QueryError> {
    match op {
        BinOper::Custom(text) => {
            let operator = |c: char| "+-*/<>=~!@#%^&|`?".contains(c);
            let comments = ["--", "/*", "*/"].iter().any(|c| text.contains(c));
            if !text.is_empty() && text.chars().all(operator) && !comments {
                Ok(())
            } else {
                Err(QueryError::RawSql)
            }
        }
        _ => Ok(()),
    }
}

pub(crate) fn check_value(value: &Value) -> Result<(), QueryError> {
    match value {
        Value::BigUnsigned(Some(n)) => check_u64(*n),
        _ => Ok(()),
    }
}

/// The largest number Postgres binds as a `bigint`.
pub(crate) fn check_u64(n: u64) -> Result<(), QueryError> {
    if i64::try_from(n).is_ok() {
        Ok(())
    } else {
        Err(QueryError::OutOfRange { value: n })
    }
}

#[cfg(test)]
mod tests {
    use sea_query::{CaseStatement, ExprTrait, Func, Query};

    use super::*;

    #[test]
    fn plain_expressions_pass_and_smuggling_ones_are_refused() {
        let ok = [
            Expr::col("name").eq("x"),
            Expr::col(("s", "name"))
                .like("a%")
                .or(Expr::col("id").is_in([1, 2, 3])),
            Expr::col("id").count(),
            Func::lower(Expr::col("name")).into(),
            Func::cust("coalesce")
                .args([Expr::col("a"), Expr::val(0)])
                .into(),
            Expr::col("details").binary(BinOper::Custom("@>"), Expr::val("{}")),
            Expr::current_timestamp(),
            Expr::val(i64::MAX as u64),
        ];
        for expr in ok {
            assert_eq!(check_expr(&expr), Ok(()), "{expr:?}");
        }
        let sub = Query::select()
            .column("id")
            .from(("app", "tasks"))
            .to_owned();
        let refused = [
            (
                Expr::col("id").in_subquery(sub.clone()),
                QueryError::RawSubquery,
            ),
            (Expr::exists(sub.clone()), QueryError::RawSubquery),
            (
                Expr::col("x").eq(Expr::col("y").not_in_subquery(sub)),
                QueryError::RawSubquery,
            ),
            (Expr::cust("(SELECT 1 FROM app.tasks)"), QueryError::RawSql),
            (Expr::cust_with_values("x = ?", [1]), QueryError::RawSql),
            (
                Func::cust("pg_sleep").arg(1).into(),
                QueryError::FunctionNotAllowed {
                    name: "pg_sleep".into(),
                },
            ),
            (
                Func::lower(Func::cust("current_setting").arg("app.tenant_id")).into(),
                QueryError::FunctionNotAllowed {
                    name: "current_setting".into(),
                },
            ),
            (
                Expr::col("a").binary(BinOper::Custom("OR 1=1 OR"), Expr::val(1)),
                QueryError::RawSql,
            ),
            (
                Expr::col("a").binary(BinOper::Custom("--"), Expr::val(1)),
                QueryError::RawSql,
            ),
            (
                Expr::col("a").binary(BinOper::Custom("+/*"), Expr::val(1)),
                QueryError::RawSql,
            ),
            (
                Expr::col("a").binary(BinOper::Custom("*/="), Expr::val(1)),
                QueryError::RawSql,
            ),
            (
                Expr::col("a").binary(BinOper::Custom("<-->"), Expr::val(1)),
                QueryError::RawSql,
            ),
            (
                Expr::val(u64::MAX),
                QueryError::OutOfRange { value: u64::MAX },
            ),
            (
                Expr::col("id").is_in([u64::MAX]),
                QueryError::OutOfRange { value: u64::MAX },
            ),
            (
                Expr::case(Expr::col("a").eq(1), 2).into(),
                QueryError::Uncheckable {
                    what: "a CASE expression",
                },
            ),
        ];
        for (expr, expected) in refused {
            assert_eq!(check_expr(&expr), Err(expected), "{expr:?}");
        }
        let _ = CaseStatement::new();
    }
}
