use rpc_core::{endpoint, Context};

struct Api;

#[endpoint]
impl Api {
    async fn prepare(&self, _ctx: &Context) {}
    async fn can_send_version(&self, _ctx: &Context) {}
}

fn main() {}
