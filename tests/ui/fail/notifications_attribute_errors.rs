use rpc_core::notifications;
use rpc_core::notify::Notification;

struct Audit;

#[notifications]
impl Audit {
    #[on(infoo)]
    async fn unknown(&self, _notification: &Notification, _payload: rpc_core::Value) {}

    #[on(info, info)]
    async fn twice(&self, _notification: &Notification, _payload: rpc_core::Value) {}

    #[on(event_type = "compute.*")]
    async fn no_priority(&self, _notification: &Notification, _payload: rpc_core::Value) {}

    #[on(warn, event_type = "")]
    async fn empty_pattern(&self, _notification: &Notification, _payload: rpc_core::Value) {}

    #[on(warn, event_type = "compute instance")]
    async fn spaced_pattern(&self, _notification: &Notification, _payload: rpc_core::Value) {}

    #[on(error)]
    #[on(critical)]
    async fn two_attributes(&self, _notification: &Notification, _payload: rpc_core::Value) {}

    #[on]
    async fn bare(&self, _notification: &Notification, _payload: rpc_core::Value) {}
}

fn main() {}
