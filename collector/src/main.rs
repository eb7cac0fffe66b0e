use std::path::PathBuf;

use clap::Parser;
use jabmon_shared::config::EXIT_CONFIG;

/// jabmon collector: samples this host and serves its stats over XMPP.
#[derive(Parser, Debug)]
#[command(version, about)]
struct Args {
    /// Configuration file (TOML). Every key can be overridden with JABMON_<SECTION>__<KEY>.
    #[arg(long, value_name = "PATH")]
    config: PathBuf,
    /// Validate the configuration, print problems, and exit (0 when valid, 64 when not).
    #[arg(long)]
    check_config: bool,
}

fn main() {
    let args = Args::parse();
    let cfg = match jabmon_collector::Config::load(Some(&args.config)) {
        Ok(cfg) => cfg,
        Err(problems) => {
            eprintln!("{problems}");
            std::process::exit(EXIT_CONFIG);
        }
    };
    if args.check_config {
        println!("configuration OK");
        return;
    }
    jabmon_shared::logging::init(&cfg.log);
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("a tokio runtime");
    let result = runtime.block_on(jabmon_collector::run(cfg, jabmon_shared::shutdown_signal()));
    if let Err(e) = result {
        tracing::error!("{e}");
        std::process::exit(1);
    }
}
