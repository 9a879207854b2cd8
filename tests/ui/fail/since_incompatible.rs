use rpc_core::{endpoint, Context};

struct Api;

#[endpoint(version = "2.1")]
impl Api {
    #[rpc(since = "2.2")]
    async fn newer(&self, _ctx: &Context) {}
    #[rpc(since = "1.0")]
    async fn older_major(&self, _ctx: &Context) {}
}

fn main() {}
