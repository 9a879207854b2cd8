use rpc_core::{endpoint, Context};

struct Api;

#[endpoint(version = "2.1")]
impl Api {
    #[rpc(since = "2.x")]
    async fn ping(&self, _ctx: &Context) {}
}

fn main() {}
