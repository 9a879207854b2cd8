use rpc_core::{endpoint, Context};

struct Api;

#[endpoint(crate = "not a path")]
impl Api {
    async fn ping(&self, _ctx: &Context) {}
}

fn main() {}
