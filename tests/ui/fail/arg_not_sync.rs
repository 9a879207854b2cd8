use std::cell::Cell;

use rpc_core::{endpoint, Context};

struct Api;

#[endpoint]
impl Api {
    async fn count(&self, _ctx: &Context, counter: Cell<u32>) {
        let _ = counter;
    }
}

fn main() {}
