//! README.md's "A walk-through with curl", run as written against a real
//! demo, so that what it shows can never drift from what the commands
//! print.
//!
//! - Every ```` ```sh ```` block of the section runs, in order, in one bash
//!   (variables carry over), with the README's addresses replaced by those
//!   of a `demo` on free ports, in a temp dir (the walk-through's working
//!   directory: `fulfillment-data/credentials.json` is there; the commands
//!   must write no file there, as they would into the reader's checkout).
//! - The plain ```` ``` ```` block right under a shell block is what it
//!   prints; a shell block without one must print nothing. stderr goes to
//!   the same stream, so an error shows in the diff.
//! - The README says its outputs are those of commands typed one after
//!   another: a change reaches the other side milliseconds after it
//!   commits. The test wraps the README's `store`, `eu` and `us` helpers so
//!   each request first waits until no change is pending on any of the
//!   three services (twice in a row).
//! - Compared line by line, modulo what changes from run to run: UUIDs
//!   become `<id1>`, `<id2>`, … in order of appearance (so the same id must
//!   appear in the same places), RFC 3339 times `<time>`, and a line that
//!   is JSON is compared without the whitespace between tokens (key order
//!   and values as printed).
//!
//! On SQLite only: `demo` runs on SQLite files, and the walk-through is
//! about the API, which both backends serve alike (tests/api runs on both).
//! Needs bash, curl and python3 (the walk-through uses them); without them
//! the test skips locally and fails under CI=true.

mod common;

use std::collections::HashMap;
use std::path::Path;
use std::time::{Duration, Instant};

use serde_json::Value;

use common::net::free_port;
use common::process::{Cmd, Proc};

const README: &str = include_str!("../README.md");
const SECTION: &str = "## A walk-through with curl";
/// The demo's default addresses, as the README shows them.
const STORE: &str = "127.0.0.1:8000";
const EU: &str = "127.0.0.1:8001";
const US: &str = "127.0.0.1:8002";

/// A shell block of the walk-through and the output shown under it.
struct Block {
    /// README.md's line of its opening fence (1-based).
    line: usize,
    script: String,
    /// `None`: no output block under it, so it must print nothing.
    shown: Option<Vec<String>>,
}

/// The walk-through's shell blocks, each with the output block right
/// under it (only blank lines between).
fn walk_through(readme: &str) -> Vec<Block> {
    let lines: Vec<&str> = readme.lines().collect();
    let start = lines
        .iter()
        .position(|l| *l == SECTION)
        .unwrap_or_else(|| panic!("README.md has no {SECTION:?} section"));
    let end = lines[start + 1..]
        .iter()
        .position(|l| l.starts_with("## "))
        .map_or(lines.len(), |i| start + 1 + i);
    // (opening line, info string, body) of each fenced block.
    let mut fences: Vec<(usize, &str, Vec<&str>)> = Vec::new();
    // Whether only blank lines came since the last block closed.
    let mut adjacent: Vec<bool> = Vec::new();
    let mut gap_blank = false;
    let mut i = start + 1;
    while i < end {
        let l = lines[i];
        if let Some(info) = l.strip_prefix("```") {
            let body_start = i + 1;
            let close = lines[body_start..end]
                .iter()
                .position(|l| l.trim_end() == "```")
                .map(|j| body_start + j)
                .unwrap_or_else(|| panic!("README.md line {}: unclosed block", i + 1));
            adjacent.push(gap_blank && !fences.is_empty());
            fences.push((i + 1, info.trim(), lines[body_start..close].to_vec()));
            i = close + 1;
            gap_blank = true;
            continue;
        }
        if !l.trim().is_empty() {
            gap_blank = false;
        }
        i += 1;
    }
    let mut blocks = Vec::new();
    for (k, (line, info, body)) in fences.iter().enumerate() {
        if *info != "sh" {
            continue;
        }
        let shown = fences
            .get(k + 1)
            .filter(|(_, info, _)| info.is_empty() && adjacent[k + 1])
            .map(|(_, _, out)| out.iter().map(|s| (*s).to_owned()).collect());
        blocks.push(Block {
            line: *line,
            script: body.join("\n"),
            shown,
        });
    }
    assert!(
        blocks.len() > 5 && blocks.iter().filter(|b| b.shown.is_some()).count() > 5,
        "README.md's walk-through: expected shell blocks with their outputs, found {}",
        blocks.len()
    );
    blocks
}

/// Makes each request of the README's helpers wait until no change is
/// pending on any side: the outputs shown are those of commands typed one
/// after another. Defined after the first block (which defines the helpers,
/// the addresses and the tokens).
const SETTLE: &str = r#"
settle() {
    python3 - "$S" "$STORE_TOKEN" "$EU" "$EU_TOKEN" "$US" "$US_TOKEN" <<'PY'
import json, sys, time, urllib.request
sides = list(zip(sys.argv[1::2], sys.argv[2::2]))
def pending(url, token):
    req = urllib.request.Request(url + "/sync/status", headers={"Authorization": "Bearer " + token})
    try:
        with urllib.request.urlopen(req, timeout=5) as r:
            return json.load(r)["pending"]
    except Exception as e:
        return str(e)
quiet = 0
deadline = time.time() + 20
while quiet < 2 and time.time() < deadline:
    seen = [pending(u, t) for u, t in sides]
    quiet = quiet + 1 if all(p == 0 for p in seen) else 0
    if quiet < 2:
        time.sleep(0.02)
if quiet < 2:
    print("walk-through test: still pending after 20 s: %s" % seen, file=sys.stderr)
PY
}
for helper in store eu us; do
    eval "_readme_$helper() $(declare -f $helper | tail -n +2)"
    eval "$helper() { settle; _readme_$helper \"\$@\"; }"
done
"#;

fn marker(n: usize) -> String {
    format!("@@readme-block {n}@@")
}

/// One bash script: each block after its marker, the settle wrapper after
/// the first.
fn script(blocks: &[Block], dir: &Path, ports: [u16; 3]) -> String {
    let mut s = String::from("exec 2>&1\n");
    s += &format!("cd '{}' || exit 1\n", dir.display());
    for (n, b) in blocks.iter().enumerate() {
        s += &format!("printf '\\n{}\\n'\n", marker(n));
        s += &local(&b.script, ports);
        s += "\n";
        if n == 0 {
            s += SETTLE;
        }
    }
    s += &format!("printf '\\n{}\\n'\n", marker(blocks.len()));
    s
}

/// The README's addresses replaced by the demo's.
fn local(text: &str, [store, eu, us]: [u16; 3]) -> String {
    text.replace(STORE, &format!("127.0.0.1:{store}"))
        .replace(EU, &format!("127.0.0.1:{eu}"))
        .replace(US, &format!("127.0.0.1:{us}"))
}

/// The demo's addresses replaced by the README's.
fn as_shown(text: &str, [store, eu, us]: [u16; 3]) -> String {
    text.replace(&format!("127.0.0.1:{store}"), STORE)
        .replace(&format!("127.0.0.1:{eu}"), EU)
        .replace(&format!("127.0.0.1:{us}"), US)
}

/// What each block printed, split at the markers.
fn outputs(all: &str, n: usize) -> Vec<Vec<String>> {
    let mut out: Vec<Vec<String>> = Vec::new();
    let mut current: Option<Vec<String>> = None;
    let mut next = 0;
    for line in all.lines() {
        if next <= n && line == marker(next) {
            if let Some(done) = current.take() {
                out.push(trim_end(done));
            }
            next += 1;
            current = (next <= n).then(Vec::new);
            continue;
        }
        if let Some(c) = current.as_mut() {
            c.push(line.to_owned());
        }
    }
    assert_eq!(
        out.len(),
        n,
        "the walk-through stopped early; all it printed:\n{all}"
    );
    out
}

/// Without the blank lines at the end (the marker's own newline).
fn trim_end(mut lines: Vec<String>) -> Vec<String> {
    while lines.last().is_some_and(|l| l.trim().is_empty()) {
        lines.pop();
    }
    lines
}

/// Masks what changes from run to run; one per side (shown, printed), so
/// the same id gets the same number on both sides when it appears in the
/// same places.
#[derive(Default)]
struct Masker {
    ids: HashMap<String, usize>,
}

impl Masker {
    fn line(&mut self, line: &str) -> String {
        let mut out = String::new();
        let mut rest = line;
        while !rest.is_empty() {
            if let Some(n) = uuid_len(rest) {
                let next = self.ids.len() + 1;
                let k = *self.ids.entry(rest[..n].to_owned()).or_insert(next);
                out += &format!("<id{k}>");
                rest = &rest[n..];
            } else if let Some(n) = time_len(rest) {
                out += "<time>";
                rest = &rest[n..];
            } else {
                let c = rest.chars().next().map_or(1, char::len_utf8);
                out += &rest[..c];
                rest = &rest[c..];
            }
        }
        if serde_json::from_str::<Value>(&out).is_ok() {
            compact(&out)
        } else {
            out
        }
    }
}

/// The length of the UUID at the start of `s`, if one is.
fn uuid_len(s: &str) -> Option<usize> {
    let b = s.as_bytes();
    if b.len() < 36 {
        return None;
    }
    let ok = b[..36].iter().enumerate().all(|(i, c)| match i {
        8 | 13 | 18 | 23 => *c == b'-',
        _ => c.is_ascii_hexdigit(),
    });
    ok.then_some(36)
}

/// The length of the RFC 3339 time (`2026-11-29T20:40:13.552069Z`, or with
/// an offset) at the start of `s`, if one is.
fn time_len(s: &str) -> Option<usize> {
    let b = s.as_bytes();
    let shape = "dddd-dd-ddTdd:dd:dd";
    if b.len() < shape.len() {
        return None;
    }
    let fits = shape.bytes().zip(b).all(|(p, c)| match p {
        b'd' => c.is_ascii_digit(),
        _ => p == *c,
    });
    if !fits {
        return None;
    }
    let mut n = shape.len();
    if b.get(n) == Some(&b'.') {
        n += 1;
        while b.get(n).is_some_and(u8::is_ascii_digit) {
            n += 1;
        }
    }
    match b.get(n) {
        Some(b'Z') => Some(n + 1),
        Some(b'+' | b'-') if b.len() >= n + 6 => Some(n + 6),
        _ => None,
    }
}

/// JSON text without the whitespace between tokens.
fn compact(json: &str) -> String {
    let mut out = String::new();
    let (mut in_string, mut escaped) = (false, false);
    for c in json.chars() {
        if in_string {
            out.push(c);
            if escaped {
                escaped = false;
            } else if c == '\\' {
                escaped = true;
            } else if c == '"' {
                in_string = false;
            }
        } else if c == '"' {
            in_string = true;
            out.push(c);
        } else if !c.is_whitespace() {
            out.push(c);
        }
    }
    out
}

/// A line diff (`-` shown, `+` printed, ` ` both), by longest common
/// subsequence; empty when equal.
fn diff(shown: &[String], printed: &[String]) -> Vec<String> {
    if shown == printed {
        return Vec::new();
    }
    let (n, m) = (shown.len(), printed.len());
    let mut lcs = vec![vec![0usize; m + 1]; n + 1];
    for i in (0..n).rev() {
        for j in (0..m).rev() {
            lcs[i][j] = if shown[i] == printed[j] {
                lcs[i + 1][j + 1] + 1
            } else {
                lcs[i + 1][j].max(lcs[i][j + 1])
            };
        }
    }
    let (mut i, mut j) = (0, 0);
    let mut out = Vec::new();
    while i < n || j < m {
        if i < n && j < m && shown[i] == printed[j] {
            out.push(format!("    {}", shown[i]));
            i += 1;
            j += 1;
        } else if j < m && (i == n || lcs[i][j + 1] >= lcs[i + 1][j]) {
            out.push(format!("  + {}", printed[j]));
            j += 1;
        } else {
            out.push(format!("  - {}", shown[i]));
            i += 1;
        }
    }
    out
}

/// Whether `program` runs (`Cmd` would panic on a missing one).
fn on_path(program: &str) -> bool {
    use std::process::{Command, Stdio};
    Command::new(program)
        .arg("--version")
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .is_ok_and(|s| s.success())
}

/// `GET url` with a bearer token, as JSON.
fn get(url: &str, token: &str) -> Option<Value> {
    let out = Cmd::program("curl")
        .args(["-sf", "-H", &format!("Authorization: Bearer {token}"), url])
        .output(None);
    out.status
        .success()
        .then(|| serde_json::from_slice(&out.stdout).ok())
        .flatten()
}

/// Waits until the demo has seeded: the store lists its eight orders and
/// the cancelled one (its last step) is cancelled there.
fn wait_seeded(demo: &mut Proc, dir: &Path, store: u16) {
    let deadline = Instant::now() + Duration::from_secs(90);
    let creds_path = dir.join("fulfillment-data/credentials.json");
    loop {
        assert!(demo.is_running(), "the demo exited: {}", demo.log_tail(30));
        let seeded = std::fs::read(&creds_path)
            .ok()
            .and_then(|b| serde_json::from_slice::<Value>(&b).ok())
            .and_then(|c| {
                let token = c["store"]["api_token"].as_str()?.to_owned();
                get(
                    &format!("http://127.0.0.1:{store}/api/v1/orders?limit=100"),
                    &token,
                )
            })
            .and_then(|list| list["items"].as_array().cloned())
            .is_some_and(|items| {
                items.len() == 8
                    && items
                        .iter()
                        .any(|o| o["fulfillment"]["status"] == "cancelled")
            });
        if seeded {
            return;
        }
        assert!(
            Instant::now() < deadline,
            "the demo did not seed in 90 s: {}",
            demo.log_tail(30)
        );
        std::thread::sleep(Duration::from_millis(100));
    }
}

#[test]
fn readme_walk_through_prints_what_it_shows() {
    let blocks = walk_through(README);
    if !common::have(
        ["bash", "curl", "python3"].iter().all(|p| on_path(p)),
        || "the README walk-through needs bash, curl and python3 on PATH".into(),
    ) {
        return;
    }
    let dir = tempfile::tempdir().expect("temp dir");
    let ports = [free_port(), free_port(), free_port()];
    let mut demo = Cmd::bin()
        .args(["demo", "--data-dir"])
        .arg(dir.path().join("fulfillment-data"))
        .args(["--store-listen", &format!("127.0.0.1:{}", ports[0])])
        .args(["--eu-listen", &format!("127.0.0.1:{}", ports[1])])
        .args(["--us-listen", &format!("127.0.0.1:{}", ports[2])])
        .log_to(&dir.path().join("demo.log"))
        .spawn();
    wait_seeded(&mut demo, dir.path(), ports[0]);

    let script_path = dir.path().join("walk-through.sh");
    std::fs::write(&script_path, script(&blocks, dir.path(), ports)).expect("write the script");
    let out = Cmd::program("bash")
        .args(["--noprofile", "--norc"])
        .arg(&script_path)
        .output(None);
    let all = as_shown(&String::from_utf8_lossy(&out.stdout), ports);
    let printed = outputs(&all, blocks.len());

    let (mut shown_mask, mut printed_mask) = (Masker::default(), Masker::default());
    let mut failures = Vec::new();
    for (b, printed) in blocks.iter().zip(&printed) {
        let shown = b.shown.clone().unwrap_or_default();
        let shown: Vec<String> = shown.iter().map(|l| shown_mask.line(l)).collect();
        let printed: Vec<String> = printed.iter().map(|l| printed_mask.line(l)).collect();
        let d = diff(&shown, &printed);
        if d.is_empty() {
            continue;
        }
        let first = b.script.lines().next().unwrap_or_default();
        let what = if b.shown.is_some() {
            "the output shown under it (-) differs from what it prints (+)"
        } else {
            "it shows no output, but prints (+)"
        };
        failures.push(format!(
            "README.md line {}, the block starting `{first}`: {what}:\n{}",
            b.line,
            d.join("\n")
        ));
    }
    // The walk-through is run from the reader's checkout: it writes no file.
    let mut left: Vec<String> = std::fs::read_dir(dir.path())
        .expect("read the temp dir")
        .filter_map(|e| e.ok())
        .map(|e| e.file_name().to_string_lossy().into_owned())
        .filter(|n| !["fulfillment-data", "demo.log", "walk-through.sh"].contains(&n.as_str()))
        .collect();
    left.sort();
    if !left.is_empty() {
        failures.push(format!(
            "the walk-through wrote into its working directory: {left:?}; keep answers in shell variables"
        ));
    }
    assert!(
        demo.is_running(),
        "the demo stopped during the walk-through: {}",
        demo.log_tail(30)
    );
    assert!(
        failures.is_empty(),
        "README.md's walk-through drifted from what its commands print \
         (ids shown as <idN>, times as <time>; fix the README or the code):\n\n{}",
        failures.join("\n\n")
    );
}
