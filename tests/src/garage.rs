//! A real Garage S3 server on loopback for one test: its own temp dir, free
//! ports, key and bucket, readiness check, kill and restart on the same data.

use std::fs::{File, OpenOptions};
use std::io::{Read, Write};
use std::net::{Ipv4Addr, SocketAddr, TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use object_store::aws::{AmazonS3, AmazonS3Builder, S3ConditionalPut};
use object_store::{ObjectStore, RetryConfig};

use crate::error::HarnessError;
use crate::Result;

const REGION: &str = "garage";
const BUCKET: &str = "recordings";
/// Cold starts answer within half a second; the rest is headroom for a loaded CI box.
const READY_TIMEOUT: Duration = Duration::from_secs(30);
/// A fresh port pair is tried this often when Garage dies at start (a port taken in between).
const START_ATTEMPTS: usize = 3;

/// A running single-node Garage; killed when dropped.
pub struct Garage {
    dir: tempfile::TempDir,
    bin: PathBuf,
    s3_port: u16,
    rpc_port: u16,
    access_key: String,
    secret_key: String,
    child: Option<Child>,
}

impl Garage {
    /// The Garage binary: `CALLQA_GARAGE_BIN`, else
    /// `$HOME/.cache/callqa/garage-2.5.0/bin/garage`.
    pub fn binary() -> Result<PathBuf> {
        let path = match std::env::var_os("CALLQA_GARAGE_BIN") {
            Some(p) => PathBuf::from(p),
            None => home().join(".cache/callqa/garage-2.5.0/bin/garage"),
        };
        if path.is_file() {
            Ok(path)
        } else {
            Err(HarnessError::GarageMissing { path })
        }
    }

    /// Starts a fresh server with its default key and bucket and waits until
    /// an authenticated S3 request works.
    pub fn start() -> Result<Garage> {
        let bin = Garage::binary()?;
        let dir = tempfile::Builder::new()
            .prefix("callqa-garage-")
            .tempdir()
            .map_err(|e| HarnessError::io(std::env::temp_dir(), e))?;
        let mut garage = Garage {
            dir,
            bin,
            s3_port: 0,
            rpc_port: 0,
            access_key: format!("GKcallqa{}", random_hex(6)?),
            secret_key: random_hex(16)?,
            child: None,
        };
        let mut attempt = 1;
        loop {
            (garage.s3_port, garage.rpc_port) = (free_port()?, free_port()?);
            garage.write_config()?;
            match garage.launch() {
                Ok(()) => return Ok(garage),
                // Dying at start is most likely a lost port race: retry on new ports.
                Err(_) if attempt < START_ATTEMPTS && garage.exited() => attempt += 1,
                Err(e) => return Err(e),
            }
        }
    }

    /// Kills the server (SIGKILL, as a crash would); data stays on disk.
    pub fn stop(&mut self) -> Result<()> {
        if let Some(mut child) = self.child.take() {
            // kill fails only if the process already exited, which is what we want.
            let _ = child.kill();
            child.wait().map_err(|e| HarnessError::io(&self.bin, e))?;
        }
        Ok(())
    }

    /// Starts the server again on the same ports, data and credentials.
    pub fn start_again(&mut self) -> Result<()> {
        self.stop()?;
        self.launch()
    }

    /// `http://127.0.0.1:PORT`, the S3 endpoint (path-style addressing).
    pub fn endpoint(&self) -> String {
        format!("http://127.0.0.1:{}", self.s3_port)
    }

    pub fn bucket(&self) -> &str {
        BUCKET
    }

    pub fn access_key(&self) -> &str {
        &self.access_key
    }

    pub fn secret_key(&self) -> &str {
        &self.secret_key
    }

    /// The S3 region clients must sign with; Garage rejects any other.
    pub fn region(&self) -> &str {
        REGION
    }

    /// Garage's own log (stdout and stderr of every start).
    pub fn log_path(&self) -> PathBuf {
        self.dir.path().join("garage.log")
    }

    /// The callqa `[storage]` section pointing at this server.
    pub fn config_toml(&self) -> String {
        format!(
            "[storage]\nurl = \"s3://{}\"\nendpoint = \"{}\"\nregion = \"{}\"\naccess_key_id = \"{}\"\nsecret_access_key = \"{}\"\n",
            self.bucket(),
            self.endpoint(),
            self.region(),
            self.access_key,
            self.secret_key
        )
    }

    /// An object_store client on the bucket, configured as the Garage note
    /// requires (path style, http, conditional puts disabled).
    pub fn store(&self) -> Result<AmazonS3> {
        self.store_with_retry(RetryConfig::default())
    }

    fn store_with_retry(&self, retry: RetryConfig) -> Result<AmazonS3> {
        Ok(AmazonS3Builder::new()
            .with_endpoint(self.endpoint())
            .with_allow_http(true)
            .with_virtual_hosted_style_request(false)
            .with_region(REGION)
            .with_bucket_name(BUCKET)
            .with_access_key_id(&self.access_key)
            .with_secret_access_key(&self.secret_key)
            .with_conditional_put(S3ConditionalPut::Disabled)
            .with_retry(retry)
            .build()?)
    }

    fn config_path(&self) -> PathBuf {
        self.dir.path().join("garage.toml")
    }

    fn write_config(&self) -> Result<()> {
        let dir = self.dir.path();
        let quoted = |p: PathBuf| serde_json::to_string(&p.to_string_lossy()).unwrap_or_default();
        let text = format!(
            "metadata_dir = {meta}\n\
             data_dir = {data}\n\
             db_engine = \"sqlite\"\n\
             replication_factor = 1\n\
             rpc_bind_addr = \"127.0.0.1:{rpc}\"\n\
             rpc_public_addr = \"127.0.0.1:{rpc}\"\n\
             rpc_secret = \"{secret}\"\n\
             \n\
             [s3_api]\n\
             api_bind_addr = \"127.0.0.1:{s3}\"\n\
             s3_region = \"{REGION}\"\n",
            meta = quoted(dir.join("meta")),
            data = quoted(dir.join("data")),
            rpc = self.rpc_port,
            s3 = self.s3_port,
            secret = random_hex(32)?,
        );
        let path = self.config_path();
        std::fs::write(&path, text).map_err(|e| HarnessError::io(path, e))
    }

    fn launch(&mut self) -> Result<()> {
        let log_path = self.log_path();
        let log = OpenOptions::new()
            .create(true)
            .append(true)
            .open(&log_path)
            .map_err(|e| HarnessError::io(&log_path, e))?;
        let log_err = log
            .try_clone()
            .map_err(|e| HarnessError::io(&log_path, e))?;
        let child = Command::new(&self.bin)
            .arg("-c")
            .arg(self.config_path())
            .args(["server", "--single-node", "--default-bucket"])
            .env("GARAGE_DEFAULT_ACCESS_KEY", &self.access_key)
            .env("GARAGE_DEFAULT_SECRET_KEY", &self.secret_key)
            .env("GARAGE_DEFAULT_BUCKET", BUCKET)
            .env_remove("GARAGE_RPC_SECRET")
            .stdin(Stdio::null())
            .stdout(log)
            .stderr(log_err)
            .spawn()
            .map_err(|e| HarnessError::io(&self.bin, e))?;
        self.child = Some(child);
        self.wait_ready()
    }

    /// The listener opens only after the default key and bucket exist, but a
    /// node without a layout also answers (403 to everything), so the last
    /// step is a signed HEAD of a missing object, which must say NotFound.
    fn wait_ready(&mut self) -> Result<()> {
        let deadline = Instant::now() + READY_TIMEOUT;
        let addr = SocketAddr::from((Ipv4Addr::LOCALHOST, self.s3_port));
        while !http_answers(addr) {
            if self.exited() {
                return Err(self.not_ready("the server exited during start"));
            }
            if Instant::now() > deadline {
                return Err(self.not_ready("the S3 port never answered HTTP"));
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        let probe = self.store_with_retry(RetryConfig {
            max_retries: 0,
            ..RetryConfig::default()
        })?;
        // A thread of its own, so this works inside or outside a tokio runtime.
        let outcome = std::thread::spawn(move || {
            let runtime = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()?;
            let head = runtime.block_on(probe.head(&"callqa-harness/readiness-probe".into()));
            Ok::<_, std::io::Error>(match head {
                Err(object_store::Error::NotFound { .. }) => Ok(()),
                Ok(_) => Err("the probe object unexpectedly exists".to_string()),
                Err(e) => Err(e.to_string()),
            })
        })
        .join();
        match outcome {
            Ok(Ok(Ok(()))) => Ok(()),
            Ok(Ok(Err(reason))) => Err(self.not_ready(&format!("signed HEAD failed: {reason}"))),
            Ok(Err(e)) => Err(self.not_ready(&format!("cannot build a tokio runtime: {e}"))),
            Err(_) => Err(self.not_ready("the readiness probe panicked")),
        }
    }

    fn exited(&mut self) -> bool {
        // Still running only if try_wait says "no exit status yet".
        !matches!(self.child.as_mut().map(Child::try_wait), Some(Ok(None)))
    }

    fn not_ready(&self, reason: &str) -> HarnessError {
        let log = self.log_path();
        let text = std::fs::read_to_string(&log).unwrap_or_default();
        let lines: Vec<&str> = text.lines().collect();
        let tail = lines[lines.len().saturating_sub(20)..].join("\n");
        HarnessError::GarageNotReady {
            reason: reason.to_string(),
            log,
            log_tail: tail,
        }
    }
}

impl Drop for Garage {
    fn drop(&mut self) {
        let _ = self.stop();
    }
}

/// True once something on `addr` answers a plain HTTP request.
fn http_answers(addr: SocketAddr) -> bool {
    let Ok(mut stream) = TcpStream::connect_timeout(&addr, Duration::from_millis(200)) else {
        return false;
    };
    let _ = stream.set_read_timeout(Some(Duration::from_secs(2)));
    if stream
        .write_all(b"GET / HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n\r\n")
        .is_err()
    {
        return false;
    }
    let mut head = [0u8; 8];
    matches!(stream.read_exact(&mut head), Ok(())) && head.starts_with(b"HTTP/1.")
}

/// A port the kernel just handed out. It is released before Garage binds it,
/// so another process may win the race; `start` retries on new ports then.
fn free_port() -> Result<u16> {
    let listener = TcpListener::bind((Ipv4Addr::LOCALHOST, 0))
        .map_err(|e| HarnessError::io("127.0.0.1:0", e))?;
    let port = listener
        .local_addr()
        .map_err(|e| HarnessError::io("127.0.0.1:0", e))?
        .port();
    Ok(port)
}

fn random_hex(bytes: usize) -> Result<String> {
    let path = Path::new("/dev/urandom");
    let mut buf = vec![0u8; bytes];
    File::open(path)
        .and_then(|mut f| f.read_exact(&mut buf))
        .map_err(|e| HarnessError::io(path, e))?;
    Ok(buf.iter().map(|b| format!("{b:02x}")).collect())
}

fn home() -> PathBuf {
    std::env::var_os("HOME").map_or_else(|| PathBuf::from("/root"), PathBuf::from)
}

#[cfg(test)]
mod tests {
    use super::*;
    use object_store::PutPayload;

    fn runtime() -> tokio::runtime::Runtime {
        tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .expect("tokio runtime")
    }

    #[test]
    fn random_hex_has_the_requested_length_and_varies() {
        let a = random_hex(32).expect("urandom");
        assert_eq!(a.len(), 64);
        assert!(a.bytes().all(|b| b.is_ascii_hexdigit()));
        assert_ne!(a, random_hex(32).expect("urandom"));
    }

    #[test]
    fn missing_binary_names_the_install_command() {
        let err = HarnessError::GarageMissing {
            path: PathBuf::from("/nowhere/garage"),
        };
        assert!(err
            .to_string()
            .contains("cargo install garage@2.5.0 --locked"));
    }

    /// Needs the Garage binary (see `Garage::binary`); fails, not skips, without it.
    #[test]
    fn serves_s3_and_keeps_data_across_a_kill() {
        let mut garage = Garage::start().unwrap_or_else(|e| panic!("{e}"));
        assert!(garage.config_toml().contains(&garage.endpoint()));
        assert!(garage.config_toml().contains("url = \"s3://recordings\""));
        let rt = runtime();
        let key = object_store::path::Path::from("calls/one.wav");
        rt.block_on(async {
            let store = garage.store().expect("store");
            store
                .put(&key, PutPayload::from_static(b"RIFF-test"))
                .await
                .expect("put");
        });

        garage.stop().expect("stop");
        let down = garage
            .store_with_retry(RetryConfig {
                max_retries: 0,
                ..RetryConfig::default()
            })
            .expect("store");
        assert!(rt.block_on(down.head(&key)).is_err(), "server is down");

        garage.start_again().expect("restart");
        rt.block_on(async {
            let store = garage.store().expect("store");
            let bytes = store
                .get(&key)
                .await
                .expect("get")
                .bytes()
                .await
                .expect("body");
            assert_eq!(&bytes[..], b"RIFF-test");
        });
    }

    #[test]
    fn readiness_works_inside_a_tokio_runtime() {
        runtime().block_on(async {
            let garage = Garage::start().unwrap_or_else(|e| panic!("{e}"));
            let meta = garage.store().expect("store").head(&"nope".into()).await;
            assert!(matches!(meta, Err(object_store::Error::NotFound { .. })));
        });
    }
}
