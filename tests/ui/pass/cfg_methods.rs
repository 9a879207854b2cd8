//! `#[cfg]` on a method removes it everywhere: stub, dispatch table, method list.

use rpc_core::{Context, Endpoint, endpoint};

struct Api;

#[endpoint]
impl Api {
    async fn always(&self, _ctx: &Context) {}

    #[cfg(any())]
    async fn never(&self, _ctx: &Context, missing: ThisTypeDoesNotExist) {}

    #[cfg(all())]
    async fn enabled(&self, _ctx: &Context) {}
}

fn main() {
    assert_eq!(Api.methods(), ["always", "enabled"]);
    let _ = <ApiClient>::always;
    let _ = <ApiClient>::enabled;
}
