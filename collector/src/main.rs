fn main() {
    let about = "jabmon collector: samples this host and serves its stats over XMPP.";
    let args =
        jabmon_shared::cli::parse_or_exit(env!("CARGO_BIN_NAME"), env!("CARGO_PKG_VERSION"), about);
    jabmon_shared::bot_main(
        jabmon_collector::Config::load(Some(&args.config)),
        args.check_config,
        |c| &c.log,
        jabmon_collector::run,
    );
}
