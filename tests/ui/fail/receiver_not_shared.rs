use rpc_core::{endpoint, Context};

struct Api;

#[endpoint]
impl Api {
    async fn by_value(self, _ctx: &Context) {}
    async fn exclusive(&mut self, _ctx: &Context) {}
}

fn main() {}
