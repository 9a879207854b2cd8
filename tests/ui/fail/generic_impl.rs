use rpc_core::{endpoint, Context};

struct Api<T>(T);

#[endpoint]
impl<T: Send + Sync + 'static> Api<T> {
    async fn ping(&self, _ctx: &Context) {}
}

fn main() {}
