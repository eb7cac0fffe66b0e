//! `jabmon-loadgen`: thousands of synthetic collectors (each a real c2s session on its own
//! account) and a few users against a private Prosody or ejabberd and a `jabmon-hub` process;
//! prints start-up time, events/s ingested and delivered, sample → user latency, and the
//! hub's and the server's CPU and memory. See docs/performance.md.
//!
//!     cargo build --release --bins
//!     target/release/jabmon-loadgen --server prosody --collectors 1000 --seconds 60

use jabmon_tests::loadgen::{run, Options};
use jabmon_tests::Kind;

const USAGE: &str = "jabmon-loadgen [--server prosody|ejabberd] [--collectors N] [--metrics M] [--interval SECONDS] [--users U] [--queries Q] [--presence-rate PER_S] [--seconds S] [--warmup S] [--logins N] [--persist-items true|false] [--server-extra LUA_OR_YAML] [--acl list|domain] [--alive-limit S]";

fn main() {
    jabmon_tests::ejabberd::allow_many_clients();
    let args: Vec<String> = std::env::args().skip(1).collect();
    let mut o = Options::default();
    let mut i = 0;
    while i < args.len() {
        let (k, v) = (
            args[i].as_str(),
            args.get(i + 1).cloned().unwrap_or_default(),
        );
        let num = |v: &str| -> f64 {
            v.parse().unwrap_or_else(|_| {
                eprintln!("{k} {v}: not a number\n{USAGE}");
                std::process::exit(2)
            })
        };
        match k {
            "--server" => {
                o.kind = Kind::from_name(&v).unwrap_or_else(|| {
                    eprintln!("{USAGE}");
                    std::process::exit(2)
                })
            }
            "--collectors" => o.collectors = num(&v) as usize,
            "--metrics" => o.metrics = num(&v) as usize,
            "--interval" => o.interval = num(&v),
            "--users" => o.users = num(&v) as usize,
            "--queries" => o.queries = num(&v) as usize,
            "--presence-rate" => o.presence_rate = num(&v),
            "--seconds" => o.seconds = num(&v),
            "--warmup" => o.warmup = num(&v),
            "--logins" => o.logins = num(&v) as usize,
            "--persist-items" => o.persist_items = Some(v == "true"),
            "--server-extra" | "--prosody-extra" => o.server_extra = v,
            "--acl" => o.acl_list = v != "domain",
            "--alive-limit" => o.alive_limit = num(&v),
            _ => {
                eprintln!("{USAGE}");
                std::process::exit(2)
            }
        }
        i += 2;
    }
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap_or_else(|e| panic!("runtime: {e}"));
    let report = rt.block_on(run(&o));
    println!("{o:?}\n{report}");
}
