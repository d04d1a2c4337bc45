//! Douyin: the pure building blocks of the provider (issue 12).
pub mod sign;
