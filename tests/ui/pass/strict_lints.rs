//! Generated items are documented and lint-clean in a strict crate.
#![deny(missing_docs, missing_debug_implementations, unreachable_pub, unused, clippy::all)]
//! A strict crate.

use rpc_core::{Context, endpoint};

/// An endpoint.
#[derive(Debug)]
pub struct Api;

#[endpoint(namespace = "strict", version = "1.0")]
impl Api {
    /// Pings.
    async fn ping(&self, _ctx: &Context) {}
}

/// A contract.
#[endpoint]
pub trait Contract {
    /// Pings.
    async fn ping(&self, ctx: &Context);
}

fn main() {
    let _ = <ApiClient>::ping;
    let _ = <ContractClient>::ping;
}
