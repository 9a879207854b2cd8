use rpc_core::{endpoint, Context};

struct Api;

struct Point {
    x: i32,
}

#[endpoint]
impl Api {
    async fn draw(&self, _ctx: &Context, point: Point) {}
}

fn main() {}
