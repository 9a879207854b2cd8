use rpc_core::{endpoint, Context};

struct Api;

#[endpoint(version = "2.1")]
impl Api {
    #[rpc(since = "2.0", since = "2.1")]
    async fn ping(&self, _ctx: &Context) {}
}

fn main() {}
