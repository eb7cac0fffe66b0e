//! `status` (subscribers): one stage — a result form with every metric, like the disco node
//! forms, and the presence summary as the note.

use jabmon_shared::adhoc::Command;
use jabmon_shared::{forms, ns};
use xmpp_parsers::data_forms::DataFormType;

use super::{completed, Context, Node};
use crate::disco::group_fields;
use crate::metrics::GROUPS;

pub fn execute(ctx: &Context<'_>) -> Command {
    let mut fields = Vec::new();
    for (group, _) in GROUPS {
        fields.extend(group_fields(group, ctx.table));
    }
    let mut form = forms::form(DataFormType::Result_, ns::STATS, fields);
    form.title = Some("Status".into());
    completed(Node::Status, None, &ctx.summary, Some(form))
}
