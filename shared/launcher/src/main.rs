//! `platform`: the local launcher.
//!
//! - `platform pg-start --dir DIR --port PORT [--fast]`: makes (if needed) and starts a private
//!   PostgreSQL cluster in DIR and prints `DATABASE_URL=...`; `make test` uses it.
//! - `platform pg-stop --dir DIR`: stops it.
#![allow(clippy::print_stdout)]

use std::path::PathBuf;

fn arg(args: &[String], name: &str) -> Option<String> {
    args.iter().position(|a| a == name).and_then(|i| args.get(i + 1)).cloned()
}

fn main() {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let result = match args.first().map(String::as_str) {
        Some("pg-start") => pg(&args, true),
        Some("pg-stop") => pg(&args, false),
        _ => Err("usage: platform pg-start --dir DIR --port PORT [--fast] | pg-stop --dir DIR --port PORT".into()),
    };
    if let Err(e) = result {
        eprintln!("platform: {e}");
        std::process::exit(1);
    }
}

fn pg(args: &[String], start: bool) -> Result<(), String> {
    let dir = PathBuf::from(arg(args, "--dir").ok_or("--dir is required")?);
    let port = arg(args, "--port").unwrap_or_else(|| "55432".into()).parse::<u16>().map_err(|e| format!("--port: {e}"))?;
    let pg = platform_localpg::LocalPostgres::new(&dir, port)?;
    if start {
        pg.start(args.iter().any(|a| a == "--fast"))?;
        println!("DATABASE_URL={}", pg.admin_url());
        Ok(())
    } else {
        pg.stop()
    }
}
