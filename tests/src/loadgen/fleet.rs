//! One synthetic collector: a real c2s session on its own account that behaves on the wire
//! like `jabmon-collector` — caps in its presence, disco#info answers with a host form,
//! `subscribe` to the hub, approval of the hub's `subscribe`, a stats item of M metrics every
//! P seconds (the first at a random phase), presence changes at a chosen rate — and nothing
//! else (no sampling: values are a random walk, or two values in turn for a test that needs a
//! flapping series; the item timestamp is the publish time).

use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use jabmon_collector::disco::{HostFacts, Profile};
use jabmon_shared::config::XmppConfig;
use jabmon_shared::payload::{Stat, Stats};
use jabmon_shared::session::{stanza_error, Incoming, IqRequest, Session, Software};
use jabmon_shared::{forms, ns, pep, unix_now};
use tokio::sync::{watch, Semaphore};
use xmpp_parsers::disco::DiscoInfoQuery;
use xmpp_parsers::jid::{BareJid, Jid};
use xmpp_parsers::presence::{Presence, Show, Type as PresenceType};
use xmpp_parsers::stanza_error::DefinedCondition;

use super::figures::{host, Rng};
use crate::client::xmpp_config;
use crate::Server;

/// What every synthetic collector shares: its plan and the fleet's counters.
pub struct Fleet {
    pub names: Vec<String>,
    pub interval: Duration,
    pub hub: BareJid,
    /// Publish-options sent with each stats item.
    pub options: Vec<(&'static str, &'static str)>,
    /// Probability that a collector changes its presence at one of its publishes.
    pub presence_chance: f64,
    pub online: AtomicU64,
    pub published: AtomicU64,
    pub publish_errors: AtomicU64,
    pub presence_changes: AtomicU64,
    /// Publish round trips (ms), recorded while `measuring`.
    pub publish_rtt: Mutex<Vec<f64>>,
    pub measuring: AtomicBool,
    /// Time of the last collector getting online (s since the epoch).
    pub last_online: Mutex<f64>,
    /// `Some((low, high))`: every stat is `low` and `high` at alternate publishes (a series
    /// that flaps) instead of a random walk.
    pub alternate: Option<(f64, f64)>,
}

impl Fleet {
    /// A fleet plan with its counters at zero and random-walk values.
    pub fn new(
        names: Vec<String>,
        interval: Duration,
        hub: BareJid,
        options: Vec<(&'static str, &'static str)>,
        presence_chance: f64,
    ) -> Self {
        Self {
            names,
            interval,
            hub,
            options,
            presence_chance,
            online: AtomicU64::new(0),
            published: AtomicU64::new(0),
            publish_errors: AtomicU64::new(0),
            presence_changes: AtomicU64::new(0),
            publish_rtt: Mutex::new(Vec::new()),
            measuring: AtomicBool::new(false),
            last_online: Mutex::new(0.0),
            alternate: None,
        }
    }
}

/// Starts collectors `0..n` of `fleet` on `server` (accounts `host(i)`, password `pw`), all
/// logging in at once; they stop when the returned sender sends `true` or is dropped.
pub fn spawn(server: &Server, fleet: &Arc<Fleet>, n: usize) -> watch::Sender<bool> {
    let (stop_tx, stop_rx) = watch::channel(false);
    let logins = Arc::new(Semaphore::new(n.max(1)));
    for i in 0..n {
        let cfg = xmpp_config(server, &format!("{}@localhost", host(i)), "pw", "jabmon");
        tokio::spawn(collector(
            i,
            cfg,
            fleet.clone(),
            logins.clone(),
            stop_rx.clone(),
        ));
    }
    stop_tx
}

/// The host facts of synthetic collector `host` (its disco#info host form).
pub fn facts(host: &str) -> HostFacts {
    HostFacts {
        hostname: format!("{host}.fleet.example"),
        os: "Debian GNU/Linux 12".into(),
        kernel: "6.1.0".into(),
        cores: 2,
        memory_total: 4 << 30,
        version: env!("CARGO_PKG_VERSION").into(),
    }
}

/// Runs collector `i` until `stop` turns true; holds a `logins` permit until first online.
pub async fn collector(
    i: usize,
    cfg: XmppConfig,
    fleet: Arc<Fleet>,
    logins: Arc<Semaphore>,
    mut stop: watch::Receiver<bool>,
) {
    let name = host(i);
    let mut rng = Rng::new(i as u64 + 1);
    let profile = Profile::new(&name, fleet.interval.as_secs_f64(), &facts(&name));
    let mut values: Vec<f64> = fleet.names.iter().map(|_| rng.unit() * 100.0).collect();
    let permit = logins.acquire_owned().await;
    let software = Software {
        name: "jabmon-loadgen".into(),
        version: "0".into(),
    };
    let Ok(mut session) = Session::start(&cfg, software) else {
        return;
    };
    let mut permit = permit.ok();
    let phase = fleet.interval.mul_f64(rng.unit());
    let mut tick = tokio::time::interval_at(tokio::time::Instant::now() + phase, fleet.interval);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    let mut away = false;
    let mut online = false;
    loop {
        tokio::select! {
            _ = stop.changed() => break,
            event = session.next() => match event {
                Some(Incoming::Online { resumed }) => {
                    online = true;
                    if permit.take().is_some() {
                        fleet.online.fetch_add(1, Ordering::Relaxed);
                        *fleet.last_online.lock().expect("lock") = unix_now();
                    }
                    if !resumed {
                        session.request_roster().await;
                        session.send(presence(&profile, away)).await;
                    }
                }
                // As the collector: ask the hub only when the roster is not mutual yet.
                Some(Incoming::Roster) if !session.contacts().mutual(&fleet.hub) => {
                    let hub = Jid::from(fleet.hub.clone());
                    session.send(Presence::subscribe().with_to(hub)).await;
                }
                Some(Incoming::Suspended) => online = false,
                Some(Incoming::Iq(req)) => answer(&session, &profile, &req).await,
                Some(Incoming::Presence(p)) if p.type_ == PresenceType::Subscribe => {
                    if let Some(from) = p.from {
                        session.send(Presence::subscribed().with_to(from.to_bare())).await;
                    }
                }
                Some(_) => {}
                None => break,
            },
            _ = tick.tick(), if online => {
                match fleet.alternate {
                    Some((low, high)) => {
                        let next = if values.first() == Some(&low) { high } else { low };
                        values.iter_mut().for_each(|v| *v = next);
                    }
                    None => {
                        for v in values.iter_mut() {
                            *v = (*v + (rng.unit() - 0.5) * 2.0).clamp(0.0, 100.0);
                        }
                    }
                }
                publish(&mut session, &fleet, &name, &values).await;
                if rng.unit() < fleet.presence_chance {
                    away = !away;
                    fleet.presence_changes.fetch_add(1, Ordering::Relaxed);
                    session.send(presence(&profile, away)).await;
                }
            }
        }
    }
    session
        .close(
            Some(jabmon_shared::presence::goodbye().into()),
            Duration::from_secs(2),
        )
        .await;
}

fn presence(profile: &Profile, away: bool) -> Presence {
    let mut p = Presence::available().with_payload(profile.caps.clone());
    if away {
        p.show = Some(Show::Away);
    }
    p
}

async fn answer(session: &Session, profile: &Profile, req: &IqRequest) {
    if !req.set {
        if let Ok(q) = DiscoInfoQuery::try_from(req.payload.clone()) {
            let info = match q.node.as_deref() {
                None => Ok(profile.root.clone()),
                Some(n) if n == profile.caps_node => {
                    let mut info = profile.root.clone();
                    info.node = Some(n.to_string());
                    Ok(info)
                }
                Some(_) => Err(stanza_error(DefinedCondition::ItemNotFound, None)),
            };
            return session
                .reply(req, info.map(|i| Some(forms::to_element(i))))
                .await;
        }
    }
    session.reply_unavailable(req).await
}

async fn publish(session: &mut Session, fleet: &Arc<Fleet>, name: &str, values: &[f64]) {
    let t = unix_now();
    let stats = Stats {
        host: name.to_string(),
        timestamp: t,
        stats: fleet
            .names
            .iter()
            .zip(values)
            .map(|(n, v)| Stat {
                name: n.clone(),
                value: (v * 100.0).round() / 100.0,
                unit: None,
            })
            .collect(),
    };
    let req = pep::publish(ns::STATS, "current", stats.into(), &fleet.options);
    let rx = session.request(None, true, req).await;
    let fleet = fleet.clone();
    tokio::spawn(async move {
        match tokio::time::timeout(Duration::from_secs(30), rx).await {
            Ok(Ok(Ok(_))) => {
                fleet.published.fetch_add(1, Ordering::Relaxed);
                if fleet.measuring.load(Ordering::Relaxed) {
                    let ms = (unix_now() - t) * 1000.0;
                    fleet.publish_rtt.lock().expect("lock").push(ms);
                }
            }
            Ok(Ok(Err(e))) => {
                if fleet.publish_errors.fetch_add(1, Ordering::Relaxed) == 0 {
                    eprintln!("loadgen: a stats publish failed: {e}");
                }
            }
            _ => {
                fleet.publish_errors.fetch_add(1, Ordering::Relaxed);
            }
        }
    });
}
