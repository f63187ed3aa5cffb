//! A private PostgreSQL cluster for `make run` and `make test`: `initdb` into a directory of its
//! own, `pg_ctl start` on a loopback port, trust authentication for local use only.
//!
//! PostgreSQL refuses to run as root; when we are root (sessions and CI are), the server runs as
//! the `postgres` system user on a directory it owns. For a non-root user it runs as that user.

use std::path::{Path, PathBuf};
use std::process::Command;

#[derive(Debug, Clone)]
pub struct LocalPostgres {
    pub dir: PathBuf,
    pub port: u16,
    bin: PathBuf,
    as_postgres: bool,
}

/// The directory with `initdb` and `pg_ctl`: `$PG_BIN`, else the newest `/usr/lib/postgresql/*/bin`.
pub fn find_bin() -> Result<PathBuf, String> {
    if let Some(p) = std::env::var_os("PG_BIN") {
        return Ok(PathBuf::from(p));
    }
    let mut versions: Vec<(u32, PathBuf)> = std::fs::read_dir("/usr/lib/postgresql")
        .map_err(|_| {
            "no PostgreSQL server found under /usr/lib/postgresql; install the postgresql package".to_string()
        })?
        .filter_map(|e| e.ok())
        .filter_map(|e| {
            let v = e.file_name().to_string_lossy().parse::<u32>().ok()?;
            let bin = e.path().join("bin");
            bin.join("initdb").exists().then_some((v, bin))
        })
        .collect();
    versions.sort();
    versions.pop().map(|(_, b)| b).ok_or_else(|| "no initdb under /usr/lib/postgresql/*/bin".into())
}

fn is_root() -> bool {
    Command::new("id").arg("-u").output().map(|o| String::from_utf8_lossy(&o.stdout).trim() == "0").unwrap_or(false)
}

impl LocalPostgres {
    pub fn new(dir: &Path, port: u16) -> Result<LocalPostgres, String> {
        let dir = if dir.is_absolute() {
            dir.to_path_buf()
        } else {
            std::env::current_dir().map_err(|e| e.to_string())?.join(dir)
        };
        Ok(LocalPostgres { dir, port, bin: find_bin()?, as_postgres: is_root() })
    }

    /// The superuser URL of the cluster's `postgres` database.
    pub fn admin_url(&self) -> String {
        format!("postgres://postgres@127.0.0.1:{}/postgres", self.port)
    }

    fn data(&self) -> PathBuf {
        self.dir.join("data")
    }

    fn command(&self, program: &str) -> Command {
        let path = self.bin.join(program);
        if self.as_postgres {
            let mut c = Command::new("runuser");
            c.args(["-u", "postgres", "--"]).arg(path);
            c
        } else {
            Command::new(path)
        }
    }

    fn run(&self, mut c: Command, what: &str) -> Result<String, String> {
        let out = c.output().map_err(|e| format!("{what}: {e}"))?;
        let text = format!("{}{}", String::from_utf8_lossy(&out.stdout), String::from_utf8_lossy(&out.stderr));
        if out.status.success() { Ok(text) } else { Err(format!("{what} failed: {text}")) }
    }

    /// Creates the cluster unless it exists, and starts it unless it runs. `fast` turns off
    /// fsync (tests: the data is disposable).
    pub fn start(&self, fast: bool) -> Result<(), String> {
        let data = self.data();
        std::fs::create_dir_all(&self.dir).map_err(|e| format!("{}: {e}", self.dir.display()))?;
        if self.as_postgres {
            self.run(
                {
                    let mut c = Command::new("chown");
                    c.args(["-R", "postgres:postgres"]).arg(&self.dir);
                    c
                },
                "chown",
            )?;
        }
        if !data.join("PG_VERSION").exists() {
            let mut c = self.command("initdb");
            c.arg("-D").arg(&data).args([
                "-U",
                "postgres",
                "-A",
                "trust",
                "--encoding=UTF8",
                "--locale=C.UTF-8",
                "--no-instructions",
            ]);
            c.env("LANG", "C.UTF-8");
            self.run(c, "initdb")?;
        }
        let mut status = self.command("pg_ctl");
        status.arg("-D").arg(&data).arg("status");
        if self.run(status, "pg_ctl status").is_ok() {
            return Ok(());
        }
        let mut opts = format!(
            "-p {} -k {} -c listen_addresses=127.0.0.1 -c max_connections=500 -c shared_buffers=256MB",
            self.port,
            self.dir.display()
        );
        if fast {
            opts.push_str(" -c fsync=off -c synchronous_commit=off -c full_page_writes=off");
        }
        let mut c = self.command("pg_ctl");
        c.arg("-D")
            .arg(&data)
            .arg("-l")
            .arg(self.dir.join("server.log"))
            .args(["-w", "-t", "60", "-o", &opts, "start"]);
        self.run(c, "pg_ctl start").map(|_| ())
    }

    /// Stops the server if it runs (a Ctrl-C in the terminal may have stopped it already).
    pub fn stop(&self) -> Result<(), String> {
        let mut status = self.command("pg_ctl");
        status.arg("-D").arg(self.data()).arg("status");
        if self.run(status, "pg_ctl status").is_err() {
            return Ok(());
        }
        let mut c = self.command("pg_ctl");
        c.arg("-D").arg(self.data()).args(["-m", "fast", "-w", "stop"]);
        self.run(c, "pg_ctl stop").map(|_| ())
    }
}
