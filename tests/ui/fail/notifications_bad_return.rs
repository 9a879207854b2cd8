use rpc_core::notifications;
use rpc_core::notify::Notification;

struct Audit;

#[notifications]
impl Audit {
    async fn info(&self, _notification: &Notification, _payload: rpc_core::Value) -> String {
        String::new()
    }
}

fn main() {}
