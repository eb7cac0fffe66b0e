use std::path::PathBuf;

use clap::Parser;
use jabmon_shared::config::EXIT_CONFIG;

/// jabmon hub: aggregates collectors and answers queries over XMPP chat.
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
    let cfg = match jabmon_hub::Config::load(Some(&args.config)) {
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
    let runtime = tokio::runtime::Builder::new_current_thread().enable_all().build().expect("a tokio runtime");
    if let Err(e) = runtime.block_on(jabmon_hub::run(cfg, jabmon_shared::shutdown_signal())) {
        tracing::error!("{e}");
        std::process::exit(1);
    }
}
