//! The load generator's users: real sessions that register queries and receive events, on a
//! runtime of their own (a separate thread), so that the thousands of collector sessions do
//! not delay the arrival times they measure. User 0 is the probe (`SELECT id` over one metric
//! of every collector: its events give the sample → user latency) and reads the hub's `stats`.

use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use jabmon_shared::adhoc::Command;
use jabmon_shared::config::XmppConfig;
use jabmon_shared::session::{Incoming, Session, Software};
use jabmon_shared::unix_now;
use tokio::sync::{mpsc, oneshot};
use xmpp_parsers::jid::Jid;
use xmpp_parsers::message::{Message, MessageType};
use xmpp_parsers::presence::Presence;

use super::figures::stats_fields;

/// The probe's query: one event per collector per publish.
pub const PROBE: &str = "SELECT id FROM ^.*\\.cpu\\.cpu\\.idle$;";

/// What the users saw.
#[derive(Default)]
pub struct Seen {
    /// Events received by every user while measuring.
    pub delivered: AtomicU64,
    /// The probe's sample → user latencies (ms) while measuring.
    pub latencies: Mutex<Vec<f64>>,
    pub measuring: AtomicBool,
    /// Query replies with status 200.
    pub accepted: AtomicU64,
}

/// A request to the probe.
pub enum Ask {
    /// Run the hub's `stats` command; its fields.
    Stats(oneshot::Sender<HashMap<String, String>>),
    Stop,
}

/// Starts the users (`(settings, queries)`, the probe first) on their own thread; returns when
/// every user is online and every query was answered.
pub fn start(
    users: Vec<(XmppConfig, Vec<String>)>,
    hub: Jid,
    hub_full: Jid,
    seen: Arc<Seen>,
) -> (mpsc::UnboundedSender<Ask>, std::thread::JoinHandle<()>) {
    let (ask_tx, ask_rx) = mpsc::unbounded_channel();
    let (ready_tx, ready_rx) = std::sync::mpsc::channel();
    let thread = std::thread::spawn(move || {
        let rt = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .expect("users' runtime");
        rt.block_on(run(users, hub, hub_full, seen, ask_rx, ready_tx));
    });
    let _ = ready_rx.recv_timeout(Duration::from_secs(120));
    (ask_tx, thread)
}

async fn run(
    users: Vec<(XmppConfig, Vec<String>)>,
    hub: Jid,
    hub_full: Jid,
    seen: Arc<Seen>,
    mut asks: mpsc::UnboundedReceiver<Ask>,
    ready: std::sync::mpsc::Sender<()>,
) {
    let (done_tx, mut done_rx) = mpsc::unbounded_channel::<()>();
    let expected: usize = users.iter().map(|(_, q)| q.len()).sum();
    let mut tasks = Vec::new();
    let mut probe_rx = None;
    for (i, (cfg, queries)) in users.into_iter().enumerate() {
        let (tx, rx) = mpsc::unbounded_channel();
        if i == 0 {
            probe_rx = Some(tx);
        }
        let user = User {
            probe: i == 0,
            hub: hub.clone(),
            hub_full: hub_full.clone(),
            seen: seen.clone(),
            done: done_tx.clone(),
        };
        tasks.push(tokio::spawn(user.run(cfg, queries, rx)));
    }
    let deadline = tokio::time::Instant::now() + Duration::from_secs(120);
    while (seen.accepted.load(Ordering::Relaxed) as usize) < expected
        && tokio::time::Instant::now() < deadline
    {
        let _ = tokio::time::timeout(Duration::from_millis(200), done_rx.recv()).await;
    }
    let _ = ready.send(());
    while let Some(ask) = asks.recv().await {
        let stop = matches!(ask, Ask::Stop);
        if let Some(p) = &probe_rx {
            let _ = p.send(ask);
        }
        if stop {
            break;
        }
    }
    drop(probe_rx);
    for t in tasks {
        t.abort();
    }
}

struct User {
    probe: bool,
    hub: Jid,
    hub_full: Jid,
    seen: Arc<Seen>,
    done: mpsc::UnboundedSender<()>,
}

impl User {
    async fn run(
        self,
        cfg: XmppConfig,
        queries: Vec<String>,
        mut asks: mpsc::UnboundedReceiver<Ask>,
    ) {
        let software = Software {
            name: "jabmon-loadgen-user".into(),
            version: "0".into(),
        };
        let Ok(mut session) = Session::start(&cfg, software) else {
            return;
        };
        let mut pending: Vec<String> = queries;
        loop {
            tokio::select! {
                event = session.next() => match event {
                    Some(Incoming::Online { resumed: false }) => {
                        session.request_roster().await;
                        session.send(Presence::available()).await;
                        for q in pending.drain(..) {
                            let mut m = Message::new(Some(self.hub.clone()));
                            m.type_ = MessageType::Chat;
                            m.bodies.insert(Default::default(), q);
                            session.send(m).await;
                        }
                    }
                    Some(Incoming::Message(m)) => self.on_message(&m),
                    Some(Incoming::Iq(req)) => session.reply_unavailable(&req).await,
                    Some(_) => {}
                    None => return,
                },
                Some(ask) = asks.recv() => match ask {
                    Ask::Stats(tx) => {
                        let _ = tx.send(self.stats(&mut session).await);
                    }
                    Ask::Stop => return,
                },
            }
        }
    }

    fn on_message(&self, m: &Message) {
        let Some(v) = m
            .bodies
            .values()
            .next()
            .and_then(|b| serde_json::from_str::<serde_json::Value>(b).ok())
        else {
            return;
        };
        if let Some(ts) = v["results"]["event"]["timestamp"].as_f64() {
            if self.seen.measuring.load(Ordering::Relaxed) {
                self.seen.delivered.fetch_add(1, Ordering::Relaxed);
                if self.probe {
                    let ms = (unix_now() - ts) * 1000.0;
                    self.seen.latencies.lock().expect("lock").push(ms);
                }
            }
        } else if v["status"].as_i64() == Some(200) && v["results"]["key"].is_string() {
            self.seen.accepted.fetch_add(1, Ordering::Relaxed);
            let _ = self.done.send(());
        } else if v["status"].as_i64().is_some_and(|s| s != 200) {
            eprintln!("loadgen: the hub refused a query: {v}");
        }
    }

    async fn stats(&self, session: &mut Session) -> HashMap<String, String> {
        let cmd = Command {
            node: "stats".into(),
            sessionid: None,
            action: Some("execute".into()),
            status: None,
            actions: None,
            notes: vec![],
            form: None,
        };
        let rx = session
            .request(Some(self.hub_full.clone()), true, cmd.to_element())
            .await;
        // The answer comes through this session's own receive loop, which is this task:
        // drive it until the outcome is there.
        tokio::pin!(rx);
        let deadline = tokio::time::sleep(Duration::from_secs(20));
        tokio::pin!(deadline);
        loop {
            tokio::select! {
                outcome = &mut rx => {
                    return match outcome {
                        Ok(Ok(Some(el))) => stats_fields(&el),
                        _ => HashMap::new(),
                    };
                }
                event = session.next() => match event {
                    Some(Incoming::Message(m)) => self.on_message(&m),
                    Some(Incoming::Iq(req)) => session.reply_unavailable(&req).await,
                    Some(_) => {}
                    None => return HashMap::new(),
                },
                _ = &mut deadline => return HashMap::new(),
            }
        }
    }
}
