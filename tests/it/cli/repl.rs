//! The REPL (`integrations:lua --repl`): state across entries, multi-line input, errors and
//! per-entry limits, and the prompt on a terminal.

use std::io::Write;
use std::path::Path;
use std::process::{Command, Stdio};
use std::time::Duration;

use tempfile::TempDir;

use crate::support::{Kosmo, kosmo};

#[test]
fn repl_keeps_state_and_prints_values() {
    let dir = TempDir::new().unwrap();
    let mut cmd = kosmo(dir.path());
    let out = cmd
        .args(["integrations:lua", "--repl"])
        .write_stdin("x = 41\nreturn x + 1\nfunction f(a)\n  return a * 2\nend\nf(21)\n:quit\nprint('after quit')\n")
        .timeout(Duration::from_secs(30))
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert_eq!(stdout, "42\n42\n", "{stdout}");
}

fn repl(dir: &Path, extra: &[&str], input: &str) -> (i32, String, String) {
    let r = Kosmo::cmd(&["integrations:lua", "--repl"])
        .flags(extra)
        .dir(dir)
        .stdin(input)
        .run();
    (r.code, r.stdout, r.stderr)
}

#[test]
fn repl_multiline_errors_and_per_entry_limits() {
    let dir = TempDir::new().unwrap();
    let input = "t = {\n  a = 1,\n  b = 2,\n}\nreturn t.a + t.b\nerror('boom')\nreturn t.b\n\
                 s = [[x\ny]]\nreturn s\nreturn 1, 'two'\nfor i = 1, 2 do\n  print(i)\nend\n\
                 while true do end\nreturn 'alive'\n  :quit  \nreturn 'after quit'\n";
    let (code, stdout, stderr) = repl(dir.path(), &["--cpu-limit", "1"], input);
    assert_eq!(code, 0, "{stderr}");
    assert_eq!(
        stdout, "3\n2\nx\ny\n1\ntwo\n1\n2\nalive\n",
        "stderr: {stderr}"
    );
    assert!(stderr.contains("boom"), "{stderr}");
    assert!(stderr.contains("cpu limit"), "{stderr}");
    // End of input without a trailing newline still runs the last entry.
    let (code, stdout, _) = repl(dir.path(), &[], "x = 6\nreturn x * 7");
    assert_eq!((code, stdout.as_str()), (0, "42\n"));
}

#[test]
fn repl_on_a_terminal_prompts_and_continues_lines() {
    if Command::new("script").arg("--version").output().is_err() {
        eprintln!("SKIP: no `script` for a pseudo-terminal");
        return;
    }
    let dir = TempDir::new().unwrap();
    let cmd = format!("{} integrations:lua --repl", env!("CARGO_BIN_EXE_kosmo"));
    let o = Command::new("script")
        .args(["-qc", &cmd, "/dev/null"])
        .env("KOSMO_CONFIG_DIR", dir.path())
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .spawn()
        .and_then(|mut c| {
            c.stdin
                .take()
                .unwrap()
                .write_all(b"x = 2\nfunction g()\nreturn x * 3\nend\ng()\n:quit\n")?;
            c.wait_with_output()
        })
        .unwrap();
    let stdout = String::from_utf8_lossy(&o.stdout);
    assert!(stdout.contains("lua> "), "{stdout}");
    assert!(stdout.contains("...> "), "continuation prompt: {stdout}");
    assert!(stdout.contains("6\r\n"), "{stdout}");
}
