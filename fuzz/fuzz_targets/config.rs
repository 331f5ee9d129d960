//! The config file (`worker-cli::config`): the input is the file's text, parsed and merged
//! the way `rigworker mine -c FILE`, a live reload and `rigworker pool -c FILE` do (the file
//! as `FileConfig` and as a TOML table, merged with no flags, turned into the client's pool
//! list), so every value a file can hold meets the checks that guard it.
#![no_main]

use libfuzzer_sys::fuzz_target;
use worker_cli::cli::{Command, parse_from};
use worker_cli::config::{FileConfig, merge_mine, merge_pool, parse};

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    let file: FileConfig = match parse(text) {
        Ok(f) => f,
        Err(e) => {
            // The error names a line and column and never quotes the file: the seeds hold
            // passwords and tokens that start with SECRET, and mutations keep them.
            assert!(!e.contains("SECRET"), "the error quotes the file: {e}");
            return;
        }
    };
    let _: Result<toml::Table, String> = parse(text);
    if let Ok(Command::Mine(args)) = parse_from(["rigworker", "mine"]).map(|c| c.command)
        && let Ok((merged, pools)) = merge_mine(args, &file)
    {
        let _ = worker_cli::commands::mine::client_config(&pools, &merged);
    }
    if let Ok(Command::Pool(args)) = parse_from(["rigworker", "pool"]).map(|c| c.command) {
        let _ = merge_pool(args, &file);
    }
});
