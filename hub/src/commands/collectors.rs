//! `collectors`: every collector with its status, as a text table and one field per collector
//! (`var` = its bare JID, labelled by its host, value = its status).

use jabmon_shared::{forms, human, ns};
use minidom::Element;
use xmpp_parsers::data_forms::FieldType;

use crate::collectors::{CollectorState, Registry};

/// The completed response: one row per collector and the counts by status, then the
/// `throttle_note` if the server throttles the hub.
pub fn execute(registry: &Registry, now: f64, throttle_note: Option<&str>) -> Element {
    let ago = |t: Option<f64>| human::ago(now, t);
    let cells: Vec<Vec<String>> = registry
        .iter()
        .map(|c| {
            vec![
                c.host.clone(),
                c.jid.to_string(),
                c.status.to_string(),
                ago(c.last_seen),
                ago(c.last_sample),
            ]
        })
        .collect();
    let counts = [
        CollectorState::Alive,
        CollectorState::Busy,
        CollectorState::Critical,
        CollectorState::Stopped,
        CollectorState::Dead,
    ]
    .iter()
    .map(|state| {
        let n = registry.iter().filter(|c| c.status == *state).count();
        format!("{n} {state}")
    })
    .collect::<Vec<_>>()
    .join(", ");
    let rows = registry
        .iter()
        .map(|c| {
            let label = format!("{} ({})", c.host, c.jid);
            forms::field(
                c.jid.as_str(),
                FieldType::TextSingle,
                &label,
                vec![c.status.to_string()],
            )
        })
        .collect();
    let form = forms::table_form(
        ns::COLLECTORS,
        "Collectors",
        &["Host", "JID", "Status", "Last seen", "Last sample"],
        &cells,
        rows,
    );
    let mut note = format!("{} collectors: {counts}.", cells.len());
    if let Some(throttled) = throttle_note {
        note.push(' ');
        note.push_str(throttled);
    }
    super::completed("collectors", &note, Some(forms::to_element(form)))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::collectors::Seen;
    use xmpp_parsers::jid::BareJid;

    #[test]
    fn counts_each_status_and_lists_every_collector() {
        let mut r = Registry::default();
        let up = Seen::Available {
            away: false,
            dnd: false,
            starting: false,
        };
        r.presence(&BareJid::new("web1@x").unwrap(), up, 0.0);
        r.presence(
            &BareJid::new("web2@x").unwrap(),
            Seen::Unavailable { planned: false },
            0.0,
        );
        r.presence(
            &BareJid::new("web3@x").unwrap(),
            Seen::Unavailable { planned: true },
            0.0,
        );
        let text = String::from(&execute(&r, 10.0, None));
        assert!(
            text.contains("3 collectors: 1 alive, 0 busy, 0 critical, 1 stopped, 1 dead."),
            "{text}"
        );
        assert!(text.contains("web2@x") && text.contains("10 s ago"));
        let throttled = String::from(&execute(&r, 10.0, Some("The server is throttling.")));
        assert!(throttled.contains("1 dead. The server is throttling."));
        assert!(
            !text.contains("<reported") && !text.contains("<item"),
            "{text}"
        );
        let el = execute(&r, 10.0, None);
        let x = el.get_child("x", "jabber:x:data").unwrap();
        let row = x
            .children()
            .find(|c| c.attr("var") == Some("web2@x"))
            .unwrap();
        assert_eq!(row.attr("label"), Some("web2 (web2@x)"));
        assert_eq!(row.children().next().unwrap().text(), "dead");
    }
}
