use rpc_core::{endpoint, Context};

struct Api;

#[endpoint]
impl Api {
    async fn store<T: serde::Serialize>(&self, _ctx: &Context, value: T) {}
}

fn main() {}
