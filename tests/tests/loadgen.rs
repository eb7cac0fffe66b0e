//! A short run of `jabmon-loadgen` (tests/src/loadgen): 50 synthetic collectors, each a real
//! session on its own account, publishing every 2 s; every one of them must show alive in the
//! hub's `stats`, and events must flow through the hub to the users.

use jabmon_tests::loadgen::{run, Options};
use jabmon_tests::{server_matrix, Kind};

async fn fifty_collectors_all_alive_and_events_flow(kind: Kind) {
    let opts = Options {
        kind,
        collectors: 50,
        interval: 2.0,
        users: 3,
        seconds: 5.0,
        warmup: 1.0,
        // Every collector is alive well before this, or the run fails.
        alive_limit: 60.0,
        ..Options::default()
    };
    let r = run(&opts).await;
    assert_eq!(r.alive, 50, "collectors alive at the hub\n{r}");
    assert!(r.alive_s.is_some(), "{r}");
    assert_eq!(r.caps_lookups, 50, "one lookup per distinct caps ver\n{r}");
    // 50 collectors × 90 stats / 2 s = 2,250 events/s offered.
    assert!(r.ingested_per_s > 1000.0, "{r}");
    assert!(r.latency.0 > 0 && r.delivered_per_s > 0.0, "{r}");
    // ejabberd has answered one publish in 150 with `item-not-found` (seen once in CI, cause
    // not found yet); the collector retries a failed publish with backoff. More than one in
    // fifty is a failure.
    assert!(r.publish_errors * 50 <= r.published, "{r}");
}

server_matrix!(
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    fifty_collectors_all_alive_and_events_flow
);

/// The hub's state for a fleet, without a server (tests/src/loadgen/memory.rs): beyond a
/// fixed part, 2,000 collectors of 90 stats, two items each, cost the hub a few KiB apiece.
/// `FLEET_MEMORY_COLLECTORS=10000` measures another fleet (docs/performance.md).
#[test]
fn the_hubs_state_costs_a_few_kib_per_collector() {
    let n: usize = std::env::var("FLEET_MEMORY_COLLECTORS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(2_000);
    let m = jabmon_tests::loadgen::memory::hub_memory(n, 90);
    eprintln!("{m}");
    assert_eq!(m.caps_lookups, n as u64, "{m}");
    assert!(m.events_in >= (n * 90 * 2) as u64, "{m}");
    assert!(m.per_collector() < 4096.0, "{m}");
}
