//! `crate = "..."` points generated code at a renamed runtime crate.

extern crate rpc_core as runtime;

use runtime::{Context, Endpoint};

struct Api;

#[runtime::endpoint(crate = "runtime", namespace = "renamed", version = "1.3")]
impl Api {
    async fn ping(&self, _ctx: &Context) -> u8 {
        1
    }
}

fn main() {
    assert_eq!(Api.namespace(), Some("renamed"));
    assert_eq!(Api.version(), runtime::Version::new(1, 3));
    let _ = <ApiClient>::ping;
}
