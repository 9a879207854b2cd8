use rpc_core::{endpoint, Context};

struct Api;

#[endpoint]
impl Api {
    async fn ping(&self, _ctx: &Context) {}
    async fn ping(&self, _ctx: &Context, _n: u32) {}
}

fn main() {}
