use rpc_core::{endpoint, Context};

#[endpoint]
trait Store<T> {
    async fn ping(&self, _ctx: &Context);
}

fn main() {}
