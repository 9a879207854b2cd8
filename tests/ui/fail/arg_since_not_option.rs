use rpc_core::{endpoint, Context};

struct Api;

#[endpoint(version = "1.3")]
impl Api {
    // Added later, but not optional: older callers would not send it.
    async fn resize(&self, _ctx: &Context, #[rpc(since = "1.2")] _size: u32) {}
}

fn main() {}
