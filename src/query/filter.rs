//! A WHERE clause shared by select, update and delete: the caller's checked expressions and
//! scoped sub-selects (`IN`, `EXISTS`), rendered after the tenant predicates.

use sea_query::{Expr, ExprTrait};

use super::check::check_expr;
use super::scoping::{Scoping, same_scoping};
use super::{QueryError, Select};

#[derive(Debug, Clone)]
enum Part<'d, S: Scoping> {
    Expr(Expr),
    In {
        expr: Expr,
        negate: bool,
        sub: Box<Select<'d, S>>,
    },
    Exists {
        negate: bool,
        sub: Box<Select<'d, S>>,
    },
}

/// The caller's conditions, AND-ed together.
#[derive(Debug, Clone)]
pub(crate) struct Filter<'d, S: Scoping> {
    parts: Vec<Part<'d, S>>,
}

impl<'d, S: Scoping> Default for Filter<'d, S> {
    fn default() -> Self {
        Self { parts: Vec::new() }
    }
}

impl<'d, S: Scoping> Filter<'d, S> {
    pub(crate) fn and(&mut self, expr: Expr) -> Result<(), QueryError> {
        check_expr(&expr)?;
        self.parts.push(Part::Expr(expr));
        Ok(())
    }

    pub(crate) fn and_in(
        &mut self,
        expr: Expr,
        negate: bool,
        sub: Select<'d, S>,
    ) -> Result<(), QueryError> {
        check_expr(&expr)?;
        self.parts.push(Part::In {
            expr,
            negate,
            sub: Box::new(sub),
        });
        Ok(())
    }

    pub(crate) fn and_exists(&mut self, negate: bool, sub: Select<'d, S>) {
        self.parts.push(Part::Exists {
            negate,
            sub: Box::new(sub),
        });
    }

    /// The conditions as sea-query expressions, sub-selects built with their own tenant
    /// predicates and checked to be scoped like `outer`.
    pub(crate) fn render(&self, outer: &S) -> Result<Vec<Expr>, QueryError> {
        self.parts
            .iter()
            .map(|part| match part {
                Part::Expr(expr) => Ok(expr.clone()),
                Part::In { expr, negate, sub } => {
                    same_scoping(outer, sub.scoping())?;
                    let statement = sub.statement()?;
                    Ok(if *negate {
                        expr.clone().not_in_subquery(statement)
                    } else {
                        expr.clone().in_subquery(statement)
                    })
                }
                Part::Exists { negate, sub } => {
                    same_scoping(outer, sub.scoping())?;
                    let statement = sub.statement()?;
                    Ok(if *negate {
                        Expr::not_exists(statement)
                    } else {
                        Expr::exists(statement)
                    })
                }
            })
            .collect()
    }
}
