use std::path::PathBuf;

use clap::Parser;

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
    jabmon_shared::bot_main(jabmon_collector::Config::load(Some(&args.config)), args.check_config, |c| &c.log, jabmon_collector::run);
}
