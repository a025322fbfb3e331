//! The signed tenant context: SQL running inside tenant A's transaction cannot switch to
//! tenant B, by any trick; keys, start-up errors and rotation; the guard's exception for the
//! toolkit's own `SECURITY DEFINER` functions.

pub(crate) mod attacks;
mod entered;
mod guard;
mod keys;
mod reinstall;
mod replay;
