use rpc_core::{endpoint, Context};

struct Api;

#[endpoint]
impl Api {
    async fn resize(&self, size: u32, ctx: &Context) {}
}

fn main() {}
