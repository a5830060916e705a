//! Starts the fake BlueZ test bed (`../shared/testbeds/fake-bluez`: a private D-Bus with a
//! python-dbusmock BlueZ that offers NUS peripherals) for a test binary, and runs the binary's
//! checks in a child process whose system bus is that private bus (btleplug reads
//! `DBUS_SYSTEM_BUS_ADDRESS` when it connects; a child gets it without touching this process's
//! environment).
//!
//! Where python3-dbusmock or the test bed is missing the checks are skipped with a message, except
//! under `CI=true`, where that is a failure (CI installs it).
#![allow(dead_code, unreachable_pub)]

use std::path::{Path, PathBuf};
use std::process::{Command, ExitCode};

const CHILD: &str = "POSBRIDGE_FAKE_BLUEZ_RUN";

/// The directory that holds the test beds: `$POSBRIDGE_TESTBEDS`, else `../shared/testbeds`
/// next to the workspace, else `/work/shared/testbeds`.
pub fn testbeds_dir() -> Option<PathBuf> {
    if let Some(d) = std::env::var_os("POSBRIDGE_TESTBEDS") {
        return Some(PathBuf::from(d));
    }
    let workspace = Path::new(env!("CARGO_MANIFEST_DIR")).join("../..");
    [
        workspace.join("../shared/testbeds"),
        PathBuf::from("/work/shared/testbeds"),
    ]
    .into_iter()
    .find(|d| d.join("fake-bluez/start-fake-bluez.sh").is_file())
}

/// A running fake BlueZ, seen from the child.
#[derive(Debug)]
pub struct FakeBluez {
    pub run_dir: PathBuf,
    pub bus: String,
}

impl FakeBluez {
    /// Calls `org.bluez.Mock.<method>` with dbus-send arguments (`string:hci0`, …).
    pub fn mock(&self, method: &str, args: &[String]) -> String {
        let out = Command::new("dbus-send")
            .arg(format!("--bus={}", self.bus))
            .args(["--print-reply", "--dest=org.bluez", "/"])
            .arg(format!("org.bluez.Mock.{method}"))
            .args(args)
            .output()
            .expect("run dbus-send");
        assert!(
            out.status.success(),
            "org.bluez.Mock.{method}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        String::from_utf8_lossy(&out.stdout).into_owned()
    }

    /// Adds a NUS peripheral on hci0 with `options` (`"mode,echo,mtu,247"`).
    pub fn add_nus(&self, address: &str, name: &str, options: &str) {
        self.mock(
            "AddNusDevice",
            &[
                "string:hci0".into(),
                format!("string:{address}"),
                format!("string:{name}"),
                format!("dict:string:string:{options}"),
            ],
        );
    }

    /// Simulates link loss with the peripheral at `address`.
    pub fn drop_link(&self, address: &str) {
        self.mock(
            "DisconnectDevice",
            &["string:hci0".into(), format!("string:{address}")],
        );
    }
}

fn skip_or_fail(why: &str) -> ExitCode {
    if std::env::var("CI").is_ok_and(|v| v == "true") {
        eprintln!("fake-bluez tests cannot run under CI: {why}");
        ExitCode::FAILURE
    } else {
        eprintln!("fake-bluez tests skipped: {why}");
        ExitCode::SUCCESS
    }
}

/// The test binary's `main`: in the parent, starts the test bed (default peripheral: NUS echo at
/// MTU 23, `AA:BB:CC:DD:EE:FF`, `MockPOS`), runs this binary again as the child, stops the bed;
/// in the child, runs `checks`.
pub fn main_with(checks: impl FnOnce(&FakeBluez)) -> ExitCode {
    if let Some(run_dir) = std::env::var_os(CHILD) {
        let bed = FakeBluez {
            bus: std::env::var("DBUS_SYSTEM_BUS_ADDRESS").expect("bus address"),
            run_dir: run_dir.into(),
        };
        checks(&bed);
        return ExitCode::SUCCESS;
    }
    let Some(beds) = testbeds_dir() else {
        return skip_or_fail(
            "the fake-bluez test bed was not found (set POSBRIDGE_TESTBEDS to the testbeds directory)",
        );
    };
    let python = std::env::var("PYTHON").unwrap_or_else(|_| "/usr/bin/python3".into());
    let has_mock = Command::new(&python)
        .args(["-c", "import dbus, dbusmock, gi"])
        .output()
        .is_ok_and(|o| o.status.success());
    if !has_mock {
        return skip_or_fail(&format!(
            "{python} lacks python3-dbusmock (apt-get install dbus python3-dbusmock)"
        ));
    }
    if Command::new("dbus-daemon")
        .arg("--version")
        .output()
        .is_err()
    {
        return skip_or_fail("dbus-daemon is missing (apt-get install dbus)");
    }
    let exe = std::env::current_exe().expect("own path");
    let name = exe.file_stem().unwrap().to_string_lossy().into_owned();
    let run_dir = std::env::temp_dir().join(format!(
        "posbridge-fake-bluez-{name}-{}",
        std::process::id()
    ));
    let bed = beds.join("fake-bluez");
    let start = Command::new(bed.join("start-fake-bluez.sh"))
        .env("FAKE_BLUEZ_RUN_DIR", &run_dir)
        .env("NUS_MODE", "echo")
        .env("NUS_MTU", "23")
        .output()
        .expect("run start-fake-bluez.sh");
    let stdout = String::from_utf8_lossy(&start.stdout);
    if !start.status.success() {
        eprintln!("{}", String::from_utf8_lossy(&start.stderr));
        panic!("start-fake-bluez.sh failed");
    }
    let bus = stdout
        .split('\'')
        .nth(1)
        .expect("export line with the bus address")
        .to_string();
    let status = Command::new(&exe)
        .env(CHILD, &run_dir)
        .env("DBUS_SYSTEM_BUS_ADDRESS", &bus)
        .status()
        .expect("run the checks");
    let _ = Command::new(bed.join("stop-fake-bluez.sh"))
        .env("FAKE_BLUEZ_RUN_DIR", &run_dir)
        .output();
    if status.success() {
        let _ = std::fs::remove_dir_all(&run_dir);
        ExitCode::SUCCESS
    } else {
        eprintln!(
            "fake-bluez checks failed ({status}); the mock's log is in {}",
            run_dir.display()
        );
        ExitCode::FAILURE
    }
}
