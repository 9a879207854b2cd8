use rpc_core::{endpoint, Context};

struct Api;

#[endpoint]
impl Api {
    const async fn a(&self, _ctx: &Context) {}
    async unsafe fn b(&self, _ctx: &Context) {}
    async extern "C" fn c(&self, _ctx: &Context) {}
}

fn main() {}
