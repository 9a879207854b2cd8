use rpc_core::{endpoint, Context};

#[endpoint(namespace = "control", version = "1.0")]
pub trait Control {
    fn not_async(&self, _ctx: &Context);
    async fn no_context(&self, size: u32);
    async fn client(&self, _ctx: &Context);
}

fn main() {}
