use rpc_core::{endpoint, Context};

struct Api;

#[endpoint]
impl Api {
    async fn touch(&self, _ctx: &mut Context) {}
}

fn main() {}
