fn main() {
    let about = "jabmon hub: aggregates collectors and answers queries over XMPP chat.";
    let args =
        jabmon_shared::cli::parse_or_exit(env!("CARGO_BIN_NAME"), env!("CARGO_PKG_VERSION"), about);
    jabmon_shared::bot_main(
        jabmon_hub::Config::load(Some(&args.config)),
        args.check_config,
        |c| &c.log,
        jabmon_hub::run,
    );
}
