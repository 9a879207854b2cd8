use rpc_core::{endpoint, Context};

struct Api;

#[endpoint]
impl Api {
    #[rpc(since = "1.1")]
    async fn ping(&self, _ctx: &Context) {}
}

fn main() {}
