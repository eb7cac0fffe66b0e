fn main() {
    let args = match jabmon_shared::cli::parse(
        std::env::args().skip(1),
        env!("CARGO_BIN_NAME"),
        env!("CARGO_PKG_VERSION"),
        "jabmon collector: samples this host and serves its stats over XMPP.",
    ) {
        Ok(args) => args,
        Err((text, code)) => {
            if code == 0 {
                println!("{text}");
            } else {
                eprintln!("{text}");
            }
            std::process::exit(code);
        }
    };
    jabmon_shared::bot_main(jabmon_collector::Config::load(Some(&args.config)), args.check_config, |c| &c.log, jabmon_collector::run);
}
