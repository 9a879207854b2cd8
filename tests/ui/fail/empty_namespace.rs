use rpc_core::{endpoint, Context};

struct Api;

#[endpoint(namespace = "")]
impl Api {
    async fn ping(&self, _ctx: &Context) {}
}

fn main() {}
