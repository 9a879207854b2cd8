use rpc_core::{endpoint, Context};

struct Api;

#[endpoint]
impl Api {
    async fn create(_ctx: &Context) {}
}

fn main() {}
