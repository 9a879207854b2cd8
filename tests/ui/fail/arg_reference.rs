use rpc_core::{endpoint, Context};

struct Api;

#[endpoint]
impl Api {
    async fn greet(&self, _ctx: &Context, name: &str) -> String {
        name.to_owned()
    }
}

fn main() {}
