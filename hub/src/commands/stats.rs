//! `stats`: the hub's own counters (see [`crate::counters`]) and the registry's size, as a
//! result form of labelled text fields, one value each — for operators and for measurement
//! tools, which take differences between two runs for rates.

use jabmon_shared::forms;
use minidom::Element;
use xmpp_parsers::data_forms::{DataFormType, FieldType};

use crate::collectors::Registry;
use crate::counters::{Counters, Summary};

/// FORM_TYPE of the result.
pub const FORM_TYPE: &str = "urn:jabmon:hub:stats:0";

/// What the result reports besides the counters.
pub struct Sizes {
    pub registrations: usize,
    pub dropped: u64,
    pub caps_pending: usize,
    pub uptime: f64,
}

/// The result's fields: (var, label, value).
pub fn fields(
    registry: &Registry,
    counters: &Counters,
    sizes: &Sizes,
) -> Vec<(String, String, String)> {
    let collectors = registry.iter().count();
    let alive = registry.iter().filter(|c| c.status.is_alive()).count();
    let mut out: Vec<(String, String, String)> = [
        (
            "uptime",
            "Seconds since start",
            format!("{:.1}", sizes.uptime),
        ),
        ("collectors", "Collectors known", collectors.to_string()),
        (
            "alive",
            "Collectors alive (alive, busy, critical, starting)",
            alive.to_string(),
        ),
        (
            "registrations",
            "Registrations",
            sizes.registrations.to_string(),
        ),
        (
            "notifications",
            "PEP notifications from collectors",
            counters.notifications.to_string(),
        ),
        (
            "events_in",
            "Events fed to the engine",
            counters.events_in.to_string(),
        ),
        ("outputs", "Engine outputs", counters.outputs.to_string()),
        (
            "messages_out",
            "Messages sent to users",
            counters.messages_out.to_string(),
        ),
        (
            "dropped",
            "Events dropped by the rate limits",
            sizes.dropped.to_string(),
        ),
        (
            "caps_lookups",
            "Caps lookups sent",
            counters.caps_lookups.to_string(),
        ),
        (
            "caps_pending",
            "Caps lookups waiting or in flight",
            sizes.caps_pending.to_string(),
        ),
    ]
    .into_iter()
    .map(|(v, l, x)| (v.to_string(), l.to_string(), x))
    .collect();
    let mut summary = |name: &str, what: &str, s: Summary| {
        out.push((
            format!("{name}_count"),
            format!("{what}: items sampled"),
            s.count.to_string(),
        ));
        for (p, v) in [("p50", s.p50), ("p99", s.p99), ("max", s.max)] {
            out.push((
                format!("{name}_{p}_ms"),
                format!("{what}, {p} (ms)"),
                format!("{v:.3}"),
            ));
        }
    };
    summary("lag", "Item timestamp to arrival", counters.lag.summary());
    summary("work", "Arrival to queued", counters.work.summary());
    out
}

/// The completed response.
pub fn execute(registry: &Registry, counters: &Counters, sizes: &Sizes) -> Element {
    let fields = fields(registry, counters, sizes)
        .into_iter()
        .map(|(var, label, value)| forms::field(&var, FieldType::TextSingle, &label, vec![value]))
        .collect();
    let form = forms::form(DataFormType::Result_, FORM_TYPE, fields);
    let alive = registry.iter().filter(|c| c.status.is_alive()).count();
    super::completed(
        "stats",
        &format!(
            "{} collectors ({alive} alive), {} events in, {} messages out.",
            registry.iter().count(),
            counters.events_in,
            counters.messages_out
        ),
        Some(forms::to_element(form)),
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::collectors::Seen;
    use xmpp_parsers::data_forms::DataForm;
    use xmpp_parsers::jid::BareJid;

    #[test]
    fn reports_counters_sizes_and_latency_as_typed_fields() {
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
        let mut c = Counters {
            events_in: 90,
            messages_out: 7,
            ..Counters::default()
        };
        c.item(Some(1.0), 1.002);
        let sizes = Sizes {
            registrations: 3,
            dropped: 2,
            caps_pending: 1,
            uptime: 12.0,
        };
        let el = execute(&r, &c, &sizes);
        let text = String::from(&el);
        assert!(
            text.contains("2 collectors (1 alive), 90 events in, 7 messages out."),
            "{text}"
        );
        let form = DataForm::try_from(
            el.get_child("x", xmpp_parsers::ns::DATA_FORMS)
                .unwrap()
                .clone(),
        )
        .unwrap();
        let value = |var: &str| {
            form.fields
                .iter()
                .find(|f| f.var.as_deref() == Some(var))
                .and_then(|f| f.values.first().cloned())
        };
        assert_eq!(value("FORM_TYPE").as_deref(), Some(FORM_TYPE));
        assert_eq!(value("alive").as_deref(), Some("1"));
        assert_eq!(value("events_in").as_deref(), Some("90"));
        assert_eq!(value("dropped").as_deref(), Some("2"));
        assert_eq!(value("notifications").as_deref(), Some("1"));
        assert_eq!(value("lag_count").as_deref(), Some("1"));
        assert_eq!(value("lag_max_ms").as_deref(), Some("2.000"));
        assert!(text.contains("type=\"text-single\"") || text.contains("type='text-single'"));
    }
}
