//! Runs IBM's official Key Protect Python SDK (`keyprotect`, pinned in
//! scripts/test) as a real client against `keyledger serve --dev`:
//! `tests/sdk/test_keyprotect_sdk.py` calls every SDK method but the KMIP
//! ones. The interpreter is `KP_SDK_PYTHON` (scripts/test sets it to its
//! venv) or `python3`. Without python3 and the pinned SDK the test is
//! skipped locally and FAILS under `CI=true`.

use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

const SDK_VERSION: &str = "3.0.1";

struct Server(Child);

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

fn python() -> String {
    std::env::var("KP_SDK_PYTHON").unwrap_or_else(|_| "python3".into())
}

/// Whether the interpreter imports the pinned SDK (and what it lacks).
fn sdk_available(python: &str) -> Result<(), String> {
    let check = format!(
        "import keyprotect, cryptography, ibm_cloud_sdk_core; \
         assert keyprotect.__version__ == '{SDK_VERSION}', keyprotect.__version__"
    );
    let out = Command::new(python)
        .args(["-c", &check])
        .output()
        .map_err(|e| format!("{python}: {e}"))?;
    if out.status.success() {
        Ok(())
    } else {
        Err(String::from_utf8_lossy(&out.stderr).into_owned())
    }
}

/// Waits until the dev server wrote its URL into dev-credentials.json.
fn wait_for_url(data: &Path, server: &mut Server) -> String {
    let path = data.join("dev-credentials.json");
    let deadline = Instant::now() + Duration::from_secs(120);
    loop {
        if let Ok(text) = std::fs::read_to_string(&path)
            && let Ok(v) = serde_json::from_str::<serde_json::Value>(&text)
            && let Some(url) = v["url"].as_str().filter(|u| !u.is_empty())
        {
            return url.to_string();
        }
        if let Ok(Some(status)) = server.0.try_wait() {
            panic!("keyledger serve exited early: {status}");
        }
        assert!(Instant::now() < deadline, "the dev server did not start");
        std::thread::sleep(Duration::from_millis(100));
    }
}

#[test]
fn official_python_sdk_against_dev_server() {
    let python = python();
    if let Err(why) = sdk_available(&python) {
        let ci = std::env::var("CI").is_ok_and(|v| v == "true");
        assert!(
            !ci,
            "CI needs python3 with keyprotect=={SDK_VERSION} (scripts/test installs it): {why}"
        );
        eprintln!("skipped: keyprotect=={SDK_VERSION} is not importable by {python}: {why}");
        return;
    }
    let dir = tempfile::tempdir().expect("tempdir");
    let data = dir.path().join("data");
    let child = Command::new(env!("CARGO_BIN_EXE_keyledger"))
        .args(["serve", "--dev", "--listen", "127.0.0.1:0", "--data-dir"])
        .arg(&data)
        .stdout(Stdio::null())
        .stderr(Stdio::inherit())
        .spawn()
        .expect("start keyledger serve");
    let mut server = Server(child);
    let url = wait_for_url(&data, &mut server);
    let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/sdk/test_keyprotect_sdk.py");
    let out = Command::new(&python)
        .arg(&script)
        .env("KP_URL", &url)
        .env("KP_INSTANCE", keyledger::server::dev::DEV_INSTANCE)
        .env("KP_CREDENTIALS", data.join("dev-credentials.json"))
        .output()
        .expect("run the SDK test");
    let report = String::from_utf8_lossy(&out.stderr);
    eprintln!("{report}");
    assert!(out.status.success(), "the Key Protect SDK test failed");
    assert!(report.contains("Ran 15 tests"), "not every SDK step ran");
    drop(server);
}
