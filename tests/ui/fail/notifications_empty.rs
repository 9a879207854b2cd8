use rpc_core::notifications;

struct Audit;

#[notifications]
impl Audit {}

#[notifications(colour = "red")]
trait Events {
    async fn info(&self, notification: &rpc_core::notify::Notification, payload: rpc_core::Value);
}

trait Other {}

#[notifications]
impl Other for Audit {}

fn main() {}
