//! Chat (pure): someone messaging the collector gets one line saying what it offers —
//! subscribers and admins only, and never an answer to an error, a headline or group chat
//! (so two bots cannot loop).

use xmpp_parsers::message::{Message, MessageType};

use crate::commands::Rights;

/// The reply to `m` from someone with `rights`, if it gets one. `host` is our host label, `me`
/// our JID, `status` our presence status line.
pub fn reply(m: &Message, rights: Rights, host: &str, me: &str, status: &str) -> Option<Message> {
    if !matches!(m.type_, MessageType::Chat | MessageType::Normal) || m.bodies.is_empty() {
        return None;
    }
    let from = m.from.clone()?;
    let admin_commands = match rights {
        Rights::None => return None,
        Rights::Subscriber => "",
        Rights::Admin => ", stats-reset, reboot, shell, thresholds",
    };
    let text = format!(
        "I am the jabmon collector of {host}: {status}. My stats groups are in service \
         discovery; ad-hoc commands: status (e.g. /cmd exec status {me} in Profanity)\
         {admin_commands}. For queries over many hosts, message the hub."
    );
    let mut reply = Message::new(Some(from));
    reply.type_ = m.type_.clone();
    reply.bodies.insert(Default::default(), text);
    Some(reply)
}

#[cfg(test)]
mod tests {
    use xmpp_parsers::jid::Jid;

    use super::*;

    fn message(type_: MessageType, body: Option<&str>) -> Message {
        let mut m = Message::new(Some(Jid::new("web1@x").unwrap()));
        m.from = Some(Jid::new("alice@x/phone").unwrap());
        m.type_ = type_;
        if let Some(b) = body {
            m.bodies.insert(Default::default(), b.to_string());
        }
        m
    }

    fn text(m: &Message) -> &str {
        m.bodies.values().next().unwrap()
    }

    #[test]
    fn subscribers_get_one_line_back() {
        let m = message(MessageType::Chat, Some("hi"));
        let r = reply(&m, Rights::Subscriber, "web1", "web1@x/c", "load 0.10").unwrap();
        assert_eq!(r.to, m.from);
        assert_eq!(r.type_, MessageType::Chat);
        assert_eq!(
            text(&r),
            "I am the jabmon collector of web1: load 0.10. My stats groups are in service \
             discovery; ad-hoc commands: status (e.g. /cmd exec status web1@x/c in Profanity). \
             For queries over many hosts, message the hub."
        );
        let admin = reply(&m, Rights::Admin, "web1", "web1@x/c", "load 0.10").unwrap();
        assert!(text(&admin).contains("status (e.g. /cmd exec status web1@x/c in Profanity), stats-reset, reboot, shell, thresholds."));
        let normal = message(MessageType::Normal, Some("hi"));
        let r = reply(&normal, Rights::Subscriber, "web1", "me", "s").unwrap();
        assert_eq!(r.type_, MessageType::Normal, "answered in kind");
    }

    #[test]
    fn no_answer_that_could_loop_or_leak() {
        for t in [
            MessageType::Error,
            MessageType::Headline,
            MessageType::Groupchat,
        ] {
            let m = message(t.clone(), Some("hi"));
            assert!(reply(&m, Rights::Admin, "h", "me", "s").is_none(), "{t:?}");
        }
        let empty = message(MessageType::Chat, None);
        assert!(
            reply(&empty, Rights::Admin, "h", "me", "s").is_none(),
            "chat state only"
        );
        let stranger = message(MessageType::Chat, Some("hi"));
        assert!(reply(&stranger, Rights::None, "h", "me", "s").is_none());
        let mut anonymous = message(MessageType::Chat, Some("hi"));
        anonymous.from = None;
        assert!(reply(&anonymous, Rights::Admin, "h", "me", "s").is_none());
    }
}
