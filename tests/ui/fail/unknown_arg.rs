use rpc_core::{endpoint, Context};

struct Api;

#[endpoint(namespace = "control", topic = "compute")]
impl Api {
    async fn ping(&self, _ctx: &Context) {}
}

fn main() {}
