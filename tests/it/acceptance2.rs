//! QA round 2: kosmo's requests (the real binary, through Lua) against the official Python SDK's,
//! case by case, with argument combinations the wire oracle does not cover
//! (tests/sdk/wire_diff.py has the cases and the comparison rules).

use std::path::Path;
use std::process::Command;

#[test]
fn wire_diff_against_the_python_sdk() {
    let Some(python) = crate::support::sdk_python() else {
        return;
    };
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let kosmo = env!("CARGO_BIN_EXE_kosmo");
    let out = Command::new(python)
        .arg(root.join("tests/sdk/wire_diff.py"))
        .arg(kosmo)
        .output()
        .expect("the wire diff harness runs");
    let stdout = String::from_utf8_lossy(&out.stdout);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        out.status.success(),
        "kosmo's requests differ from the SDK's:\n{stdout}\n{stderr}"
    );
    // The harness must have compared something: a silent zero-case run is a failure too.
    assert!(
        stdout.lines().filter(|l| l.starts_with("ok ")).count() >= 80,
        "too few cases compared:\n{stdout}"
    );
}
