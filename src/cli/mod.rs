//! The commands of the `flashconv` binary, one module each.

pub(crate) mod bench;
pub(crate) mod common;
pub(crate) mod embed;
pub(crate) mod generate;
pub(crate) mod info;
pub(crate) mod records;
pub(crate) mod score;
