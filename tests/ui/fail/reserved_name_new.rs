use rpc_core::{endpoint, Context};

struct Api;

#[endpoint]
impl Api {
    async fn new(&self, _ctx: &Context) {}
    async fn cast(&self, _ctx: &Context) {}
}

fn main() {}
