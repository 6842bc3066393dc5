//! A PostgreSQL server of one test's own, started and stopped through
//! `scripts/postgres.sh` (a data directory in a temp dir, 127.0.0.1, a free port), so a
//! test may stop the database under the service without disturbing anything else.

use std::path::PathBuf;
use std::process::Command;

use anyhow::{bail, Context};

/// A running (or deliberately stopped) test PostgreSQL.
pub struct TestPostgres {
    dir: tempfile::TempDir,
    url: String,
}

impl TestPostgres {
    /// Starts a new server; answers once it accepts connections.
    pub fn start(name: &str) -> anyhow::Result<TestPostgres> {
        let dir = tempfile::Builder::new().prefix(&format!("airlock-pg-{name}-")).tempdir()?;
        // The server runs as `postgres` when the tests run as root: it must reach its directory.
        let _ = Command::new("chmod").arg("755").arg(dir.path()).status();
        let mut pg = TestPostgres { dir, url: String::new() };
        let out = pg.script("start")?;
        let url = out
            .lines()
            .find_map(|l| l.strip_prefix("export AIRLOCK_TEST_POSTGRES_URL="))
            .context("scripts/postgres.sh start printed no URL")?;
        pg.url = url.trim().to_string();
        let mut client = postgres::Client::connect(&pg.url, postgres::NoTls).context("connecting")?;
        client.batch_execute("CREATE DATABASE airlock").context("creating the airlock database")?;
        Ok(pg)
    }

    /// The URL of the `airlock` database.
    pub fn url(&self) -> String {
        self.url.replace("/postgres", "/airlock")
    }

    /// Stops the server (`pg_ctl stop -m fast`).
    pub fn stop(&self) -> anyhow::Result<()> {
        self.script("stop").map(|_| ())
    }

    /// Starts it again on the same port (the script keeps the port while it can).
    pub fn resume(&self) -> anyhow::Result<()> {
        let port_file = self.dir.path().join("pg").join("port");
        let port = std::fs::read_to_string(&port_file)?;
        let out = self.script_with("start", Some(port.trim()))?;
        if !out.contains(port.trim()) {
            bail!("the server came back on another port: {out}");
        }
        Ok(())
    }

    fn script(&self, verb: &str) -> anyhow::Result<String> {
        self.script_with(verb, None)
    }

    fn script_with(&self, verb: &str, port: Option<&str>) -> anyhow::Result<String> {
        let script = crate::wasm::workspace_root().join("scripts").join("postgres.sh");
        let mut cmd = Command::new("bash");
        cmd.arg(&script).arg(verb).env("AIRLOCK_PG_DIR", self.base());
        if let Some(p) = port {
            cmd.env("AIRLOCK_PG_PORT", p);
        }
        let out = cmd.output().with_context(|| format!("running {}", script.display()))?;
        let text = format!("{}{}", String::from_utf8_lossy(&out.stdout), String::from_utf8_lossy(&out.stderr));
        if !out.status.success() {
            bail!("scripts/postgres.sh {verb} failed: {text}");
        }
        Ok(text)
    }

    fn base(&self) -> PathBuf {
        self.dir.path().join("pg")
    }
}

impl Drop for TestPostgres {
    fn drop(&mut self) {
        let _ = self.script("stop");
    }
}
