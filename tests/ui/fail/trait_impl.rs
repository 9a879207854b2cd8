use rpc_core::{endpoint, Context};

struct Api;

trait Ping {
    async fn ping(&self, _ctx: &Context);
}

#[endpoint]
impl Ping for Api {
    async fn ping(&self, _ctx: &Context) {}
}

fn main() {}
