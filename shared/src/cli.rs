//! The bots' command line: `--config PATH`, `--check-config`, `--help`, `--version`. Two flags
//! do not need an argument-parsing framework (and its code stays resident in every collector).

/// What the command line asked for.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Args {
    pub config: std::path::PathBuf,
    pub check_config: bool,
}

/// Parses `args` (without the program name). `Err` carries the text to print and the exit
/// status: 0 for `--help`/`--version`, 64 for a usage error.
pub fn parse(
    args: impl IntoIterator<Item = String>,
    name: &str,
    version: &str,
    about: &str,
) -> Result<Args, (String, i32)> {
    let usage = format!(
        "{about}\n\nUsage: {name} --config PATH [--check-config]\n\nOptions:\n  \
         --config PATH     Configuration file (TOML). Every key can be overridden with\n                    \
         JABMON_<SECTION>__<KEY> environment variables.\n  \
         --check-config    Validate the configuration, print every problem, and exit\n                    \
         (0 when valid, 64 when not).\n  \
         -h, --help        Print this help.\n  \
         -V, --version     Print the version."
    );
    let mut config = None;
    let mut check_config = false;
    let mut args = args.into_iter();
    while let Some(arg) = args.next() {
        match arg.as_str() {
            "-h" | "--help" => return Err((usage, 0)),
            "-V" | "--version" => return Err((format!("{name} {version}"), 0)),
            "--check-config" => check_config = true,
            "--config" => match args.next() {
                Some(path) => config = Some(path.into()),
                None => return Err((format!("error: --config needs a PATH\n\n{usage}"), 64)),
            },
            other => match other.strip_prefix("--config=") {
                Some(path) => config = Some(path.into()),
                None => {
                    return Err((
                        format!("error: unexpected argument `{other}`\n\n{usage}"),
                        64,
                    ))
                }
            },
        }
    }
    match config {
        Some(config) => Ok(Args {
            config,
            check_config,
        }),
        None => Err((format!("error: --config PATH is required\n\n{usage}"), 64)),
    }
}

/// [`parse`] on the process's arguments; prints help, version or the usage error and exits
/// when there is nothing to run.
pub fn parse_or_exit(name: &str, version: &str, about: &str) -> Args {
    match parse(std::env::args().skip(1), name, version, about) {
        Ok(args) => args,
        Err((text, 0)) => {
            println!("{text}");
            std::process::exit(0);
        }
        Err((text, code)) => {
            eprintln!("{text}");
            std::process::exit(code);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn p(args: &[&str]) -> Result<Args, (String, i32)> {
        parse(
            args.iter().map(|s| s.to_string()),
            "jabmon-x",
            "1.0",
            "About.",
        )
    }

    #[test]
    fn flags() {
        assert_eq!(
            p(&["--config", "a.toml"]).unwrap(),
            Args {
                config: "a.toml".into(),
                check_config: false
            }
        );
        assert_eq!(
            p(&["--check-config", "--config=b.toml"]).unwrap(),
            Args {
                config: "b.toml".into(),
                check_config: true
            }
        );
        let (help, code) = p(&["--help"]).unwrap_err();
        assert_eq!(code, 0);
        assert!(help.contains("--check-config") && help.contains("JABMON_<SECTION>__<KEY>"));
        assert_eq!(p(&["-V"]).unwrap_err(), ("jabmon-x 1.0".to_string(), 0));
        assert_eq!(p(&[]).unwrap_err().1, 64);
        assert_eq!(p(&["--config"]).unwrap_err().1, 64);
        assert_eq!(p(&["--bogus"]).unwrap_err().1, 64);
    }
}
