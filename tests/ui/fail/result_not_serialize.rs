use rpc_core::{endpoint, Context};

struct Api;

struct Report;

#[endpoint]
impl Api {
    async fn report(&self, _ctx: &Context) -> Report {
        Report
    }
}

fn main() {}
