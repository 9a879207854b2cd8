use rpc_core::{endpoint, Context};

struct Api;

#[endpoint(version = "1.3")]
impl Api {
    // Not later than its method: it was there from the start.
    #[rpc(since = "1.2")]
    async fn early(&self, _ctx: &Context, #[rpc(since = "1.1")] size: Option<u32>) {}
    // The context always travels.
    async fn context(&self, #[rpc(since = "1.2")] _ctx: &Context) {}
    // Beyond the endpoint's version.
    async fn future(&self, _ctx: &Context, #[rpc(since = "1.4")] size: Option<u32>) {}
}

fn main() {}
