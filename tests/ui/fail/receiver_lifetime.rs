use rpc_core::{endpoint, Context};

struct Api;

#[endpoint]
impl Api {
    async fn forever(&'static self, _ctx: &Context) {}
    async fn kept(&self, _ctx: &'static Context) {}
}

fn main() {}
