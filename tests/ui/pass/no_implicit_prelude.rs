//! Generated code relies on nothing from the prelude.
#![no_implicit_prelude]

struct Api;

#[::rpc_core::endpoint(namespace = "np", version = "1.0")]
impl Api {
    async fn echo(
        &self,
        _ctx: &::rpc_core::Context,
        text: ::std::string::String,
        count: ::std::option::Option<u32>,
    ) -> ::std::result::Result<::std::vec::Vec<::std::string::String>, ::std::string::String> {
        ::std::result::Result::Ok(::std::vec![text; count.unwrap_or(1) as usize])
    }
}

#[::rpc_core::endpoint]
trait Contract {
    async fn ping(&self, ctx: &::rpc_core::Context) -> u8;

    #[rpc(uninterruptible)]
    async fn commit(&self, ctx: &::rpc_core::Context) -> u8;
}

struct Audit;

#[::rpc_core::notifications]
impl Audit {
    async fn info(&self, _notification: &::rpc_core::notify::Notification, _payload: ::rpc_core::Value) {}
}

#[::rpc_core::notifications]
trait Billing {
    #[on(info, warn, event_type = "billing.*")]
    async fn charged(&self, notification: &::rpc_core::notify::Notification, payload: ::rpc_core::Value);
}

fn main() {
    let _ = <ApiClient>::new;
    let _ = <ContractClient>::new;
    let _ = <BillingNotifier>::new;
}
