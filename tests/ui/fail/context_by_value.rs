use rpc_core::{endpoint, Context};

struct Api;

#[endpoint]
impl Api {
    async fn resize(&self, ctx: Context, size: u32) {}
}

fn main() {}
