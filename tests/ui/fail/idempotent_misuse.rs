use rpc_core::{endpoint, Context};

struct Api;

#[endpoint(version = "1.1")]
impl Api {
    #[rpc(idempotent = true)]
    async fn valued(&self, _ctx: &Context) {}

    #[rpc(idempotent, idempotent)]
    async fn twice(&self, _ctx: &Context) {}

    async fn on_argument(&self, _ctx: &Context, #[rpc(idempotent)] _value: u32) {}
}

fn main() {}
