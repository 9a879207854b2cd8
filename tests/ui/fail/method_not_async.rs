use rpc_core::{endpoint, Context};

struct Api;

#[endpoint]
impl Api {
    fn ping(&self, _ctx: &Context) {}
}

fn main() {}
