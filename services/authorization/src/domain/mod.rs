//! Authorization's rules as plain functions over plain types.

pub mod agreement;
pub mod plan;
