use rpc_core::{endpoint, Context};

struct Api;

#[endpoint]
impl Api {
    async fn store(&self, _ctx: &Context, value: impl Into<String>) {}
}

fn main() {}
