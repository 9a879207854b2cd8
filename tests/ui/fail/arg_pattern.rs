use rpc_core::{endpoint, Context};

struct Api;

#[endpoint]
impl Api {
    async fn area(&self, _ctx: &Context, (width, height): (u32, u32)) -> u32 {
        width * height
    }
}

fn main() {}
