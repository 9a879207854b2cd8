use rpc_core::{endpoint, Context};

struct Api;

#[endpoint]
impl Api {
    async fn _internal(&self, _ctx: &Context) {}
}

fn main() {}
