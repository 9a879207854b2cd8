use rpc_core::{endpoint, Context};

struct Api;

#[endpoint]
impl Api {
    async fn ping(&self, _ctx: &Context) {}
    async fn ping(&self, _ctx: &Context, _n: u32) {}
    // `_flavor` travels as `flavor`.
    async fn boot(&self, _ctx: &Context, flavor: String, _flavor: String) {
        let _ = flavor;
    }
}

fn main() {}
