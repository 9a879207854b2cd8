use rpc_core::{endpoint, Context};

struct Newer;

#[endpoint(version = "1.2", since = "1.3")]
impl Newer {
    async fn a(&self, _ctx: &Context) {}
}

struct Unversioned;

#[endpoint(since = "1.0")]
impl Unversioned {
    async fn b(&self, _ctx: &Context) {}
}

fn main() {}
