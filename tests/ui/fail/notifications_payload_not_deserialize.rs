use rpc_core::notifications;
use rpc_core::notify::Notification;

struct NotJson;

struct Audit;

#[notifications]
impl Audit {
    async fn info(&self, _notification: &Notification, _payload: NotJson) {}
}

fn main() {}
