use rpc_core::{endpoint, Context};

struct Api;

#[endpoint(version = "2")]
impl Api {
    async fn ping(&self, _ctx: &Context) {}
}

fn main() {}
