//! The commands, one module each.

pub(crate) mod bench;
pub(crate) mod call;
pub(crate) mod describe;
pub(crate) mod listen;
pub(crate) mod notify;
pub(crate) mod ping;
pub(crate) mod servers;
