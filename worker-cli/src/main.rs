//! The `rigworker` binary: parse the command line, read the config file, start logging, run
//! the subcommand.

use worker_cli::cli::{self, Command, LogFormat};
use worker_cli::config::FileConfig;
use worker_cli::{commands, logging};

fn main() -> std::process::ExitCode {
    let cli = cli::parse();
    // The config file is read before logging starts, because it may choose the log format
    // (a flag or RIGWORKER_LOG_FORMAT still wins over it).
    let config_path = match &cli.command {
        Command::Mine(a) => a.config.clone(),
        Command::Pool(a) => a.config.clone(),
        _ => None,
    };
    let file = FileConfig::load_optional(config_path.as_deref());
    let log_format = cli
        .log_format
        .or_else(|| file.as_ref().ok().and_then(|f| f.log_format));
    logging::init(cli.verbose, log_format);
    let result = file.and_then(|file| match cli.command {
        Command::Devices(a) => commands::devices::run(&a),
        Command::Bench(a) => commands::bench::run(&a),
        Command::Mine(a) => commands::mine::run(a, &file),
        Command::Pool(a) => commands::pool::run(a, &file),
        Command::Prove(a) => commands::prove::run(&a),
        Command::Verify(a) => commands::prove::verify(&a),
    });
    match result {
        Ok(()) => std::process::ExitCode::SUCCESS,
        Err(e) => {
            if log_format == Some(LogFormat::Json) {
                // Scripts reading JSON logs get the error as one more JSON line.
                tracing::error!(error = format!("{e:#}"), "rigworker failed");
            } else {
                eprintln!("rigworker: error: {e:#}");
            }
            std::process::ExitCode::FAILURE
        }
    }
}
