use rpc_core::{endpoint, Context};

struct Api;

#[endpoint]
impl Api
where
    Api: Sized,
{
    async fn ping(&self, _ctx: &Context) {}
}

struct Other;

#[endpoint]
impl Other {
    async fn ping(&self, _ctx: &Context)
    where
        Self: Sized,
    {
    }
}

#[endpoint]
trait Contract
where
    Self: Sized,
{
    async fn ping(&self, ctx: &Context);
}

fn main() {}
