use rpc_core::{endpoint, Context};

struct Api;

#[endpoint(version = 2.0)]
impl Api {
    async fn ping(&self, _ctx: &Context) {}
}

fn main() {}
