//! The gateway's rules as plain functions, no I/O: small-group, complement and secondary
//! suppression (WF-26, ZJK-21) and query-set overlap control against trackers.

pub mod overlap;
pub mod suppress;
