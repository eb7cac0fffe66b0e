//! Fuzzes the command and proc parsers through `Engine::handle`, checks that every proc that
//! parses prints canonically and parses back to itself, and runs a few events through any
//! registration that was accepted. Any panic is a bug.
#![no_main]

use jabmon_hub::query::{parse_proc, Engine, Limits};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Ok(body) = std::str::from_utf8(data) else {
        return;
    };
    if let Ok(proc) = parse_proc(body) {
        let printed = proc.to_string();
        let again = parse_proc(&printed).expect("canonical text parses");
        assert_eq!(again, proc, "parse(print(p)) == p for {printed:?}");
        assert_eq!(again.to_string(), printed);
    }
    let mut engine = Engine::new(Limits {
        max_names: 8,
        ..Limits::default()
    });
    let reply = engine.handle("fuzz@example.org", body);
    let _ = reply.to_json();
    if reply.status == 200 && !engine.is_empty() {
        let mut out = Vec::new();
        let values = [0.0, -1.5, f64::NAN, f64::INFINITY, 1e308, -0.0, 7.0];
        for (i, v) in values.iter().enumerate() {
            let t = i as f64 * 0.7;
            engine.feed("web1.cpu.cpu.idle", t, *v, &mut out);
            engine.feed("a", f64::NAN, *v, &mut out);
            engine.tick(t * 100.0, &mut out);
        }
        for saved in engine.registrations() {
            let mut fresh = Engine::default();
            assert_eq!(fresh.restore(&saved).as_deref(), Ok(saved.key.as_str()));
        }
    }
});
