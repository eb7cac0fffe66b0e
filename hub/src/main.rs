fn main() {
    eprintln!("jabmon-hub: not yet implemented (see issue 5)");
    std::process::exit(1);
}
