//! `status` (subscribers): one stage — a result form with the current value of every metric
//! as people read it (labelled and shown as in the disco node forms, groups in disco order), then the thresholds in force (`threshold.NAME`), and the presence summary as the note.

use jabmon_shared::adhoc::Command;
use jabmon_shared::{forms, ns};
use xmpp_parsers::data_forms::DataFormType;

use super::{completed, Context, Node};
use crate::metrics::{title, GROUPS};

pub fn execute(ctx: &Context<'_>) -> Command {
    let mut fields = Vec::new();
    // Current values only: the windowed figures are in the disco node forms, and 6 fields a
    // metric make an unreadable wall in a console client.
    for (group, _) in GROUPS {
        for (name, s) in ctx.table.group(group) {
            fields.push(forms::field(
                name,
                xmpp_parsers::data_forms::FieldType::TextSingle,
                &title(name),
                vec![s.unit.show(s.value)],
            ));
        }
    }
    // The thresholds in force, so an operator sees what presence and alerts compare against.
    fields.extend(
        super::thresholds::result_form(ctx.thresholds)
            .fields
            .into_iter()
            .map(|mut f| {
                f.var = f.var.map(|v| format!("threshold.{v}"));
                f.label = f.label.map(|l| format!("Threshold: {l}"));
                f
            }),
    );
    let mut form = forms::form(DataFormType::Result_, ns::STATS, fields);
    form.title = Some("Status".into());
    completed(Node::Status, None, &ctx.summary, Some(form))
}
