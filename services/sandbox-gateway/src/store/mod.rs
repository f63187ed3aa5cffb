//! The gateway's own tables, read and written through diesel: so far the per-grant history of
//! released groups that overlap control checks against.

pub mod released;
