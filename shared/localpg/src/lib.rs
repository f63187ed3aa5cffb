//! A private PostgreSQL cluster for `make run` and `make test`: `initdb` into a directory of its
//! own, `pg_ctl start` on a loopback port, trust authentication for local use only.
//!
//! PostgreSQL refuses to run as root; when we are root (sessions and CI are), the server runs as
//! the `postgres` system user on a directory it owns. For a non-root user it runs as that user.
//!
//! The `postgres` user must traverse every parent of the cluster's directory. A checkout under a
//! directory of mode 0700 (`/root`, what `mktemp -d` makes) is out of its reach; the cluster
//! then lives in `/var/tmp/platform-localpg/<hash of the requested path>`, and the requested
//! directory holds a `LOCATION` file naming it. Removing the requested directory (`make clean`,
//! `rm -rf target/test-pg`) still means "start afresh": a relocated cluster whose `LOCATION`
//! file is gone is stopped and removed before the next start.

use std::path::{Path, PathBuf};
use std::process::Command;

#[derive(Debug, Clone)]
pub struct LocalPostgres {
    /// Where the cluster lives (the requested directory, or its relocation for `postgres`).
    pub dir: PathBuf,
    /// The directory the caller asked for.
    pub requested: PathBuf,
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

/// Whether the `postgres` user can traverse to `dir` (or, before it exists, to its nearest
/// existing parent, since a directory root creates there is world-traversable).
fn postgres_reaches(dir: &Path) -> bool {
    let Some(existing) = dir.ancestors().find(|p| p.exists()) else { return false };
    Command::new("runuser")
        .args(["-u", "postgres", "--", "test", "-x"])
        .arg(existing)
        .status()
        .map(|s| s.success())
        .unwrap_or(false)
}

/// Where a cluster the `postgres` user cannot reach lives instead: one directory per requested
/// path, so two checkouts never share a cluster.
fn relocation(dir: &Path) -> PathBuf {
    // FNV-1a: stable across runs and toolchains (the std hasher promises neither).
    let hash = dir
        .as_os_str()
        .as_encoded_bytes()
        .iter()
        .fold(0xcbf2_9ce4_8422_2325_u64, |h, b| (h ^ u64::from(*b)).wrapping_mul(0x0100_0000_01b3));
    PathBuf::from("/var/tmp/platform-localpg").join(format!("{hash:016x}"))
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
        let as_postgres = is_root();
        let requested = dir.clone();
        let dir = if as_postgres && !postgres_reaches(&dir) { relocation(&dir) } else { dir };
        Ok(LocalPostgres { dir, requested, port, bin: find_bin()?, as_postgres })
    }

    /// Whether the cluster lives outside the requested directory (see the module documentation).
    pub fn relocated(&self) -> bool {
        self.dir != self.requested
    }

    /// For a relocated cluster: the requested directory with its `LOCATION` file, after removing
    /// a cluster left there by a requested directory that was deleted since.
    fn claim_relocation(&self) -> Result<(), String> {
        let marker = self.requested.join("LOCATION");
        if !marker.exists() && self.dir.exists() {
            let _ = self.stop();
            std::fs::remove_dir_all(&self.dir).map_err(|e| format!("{}: {e}", self.dir.display()))?;
        }
        std::fs::create_dir_all(&self.requested).map_err(|e| format!("{}: {e}", self.requested.display()))?;
        let note = format!(
            "{}\n(the postgres user cannot reach this directory, so the cluster lives there; delete this directory to start afresh)\n",
            self.dir.display()
        );
        std::fs::write(&marker, note).map_err(|e| format!("{}: {e}", marker.display()))
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
        if self.relocated() {
            self.claim_relocation()?;
        }
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
