//! Local items named like the prelude's do not confuse generated code; a
//! `Result` alias is still treated as fallible; a type named like the
//! generated impls' generic parameters (`S`) is the user's type in them.
#![allow(dead_code)]

use rpc_core::{Context, endpoint};

#[derive(Debug, PartialEq, serde::Serialize, serde::Deserialize)]
struct Denied;

impl std::fmt::Display for Denied {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("denied")
    }
}

type Result<T> = std::result::Result<T, Denied>;
struct Option;
struct Some;
struct None;
struct Box;
struct Send;
struct Clone;
struct Debug;
mod core {}
mod serde_json {}

#[derive(serde::Serialize, serde::Deserialize)]
struct S(u8);

struct Api;

#[endpoint]
impl Api {
    async fn check(&self, _ctx: &Context, allowed: bool) -> Result<u8> {
        if allowed { Ok(1) } else { Err(Denied) }
    }

    async fn put(&self, _ctx: &Context, s: S) -> S {
        s
    }
}

#[endpoint]
trait Store {
    async fn put(&self, ctx: &Context, s: S) -> S;
}

#[rpc_core::notifications]
trait Audit {
    #[on(info, event_type = "audit.put")]
    async fn put(&self, notification: &rpc_core::notify::Notification, payload: S);
}

fn main() {
    let _ = <ApiClient>::new;
    let _ = <StoreClient>::put;
    let _ = <AuditNotifier>::put;
}
