//! The sink transports against real receivers on loopback: a rotated file,
//! a throwaway rsyslogd over TCP and TLS (scripts/rsyslog-setup), and the
//! HEC-like receiver tests/support/hec_receiver.py. Lines arrive
//! byte-exact; a receiver SIGKILLed mid-stream and restarted loses no
//! record when failed batches are sent again; certificates and tokens are
//! checked; the HEC token shows in no error or Debug output.

#[path = "../../../tests/common/receivers.rs"]
mod receivers;

use std::collections::HashSet;
use std::fs;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::sync::mpsc;
use std::sync::{Arc, Mutex};
use std::thread;
use std::time::{Duration, Instant};

use chrono::{TimeZone, Utc};
use keyledger_export::sink::{self, Entry, SendError, Target, TlsClient, Transport};
use receivers::{HecReceiver, Rsyslog};
use zeroize::Zeroizing;

/// How long a retried batch may keep failing (receiver restarting).
const RETRY_DEADLINE: Duration = Duration::from_secs(60);

const TOKEN: &str = "11111111-2222-3333-4444-555555555555";

/// Lines a SIEM must get byte for byte: format separators and escapes,
/// non-ASCII, a leading space, a long line.
fn tricky_lines() -> Vec<String> {
    vec![
        r"CEF:0|keyledger|keyledger|0.1.0|key.wrapped|Key wrapped|3|msg=a\=b c\\d|e cs1=é".into(),
        "LEEF:2.0|keyledger|keyledger|0.1.0|key.unwrapped|^|sev=5^usrName=ünïcödé 日本語 🔑".into(),
        r#"{"seq":3,"note":"quote \" backslash \\ tab \t","pipe":"|","eq":"="}"#.into(),
        " leading space and trailing space ".into(),
        format!("long={}", "x=y|z\\".repeat(20_000)),
    ]
}

/// One entry per line, seq from 0.
fn entries(lines: &[String]) -> Vec<Entry> {
    lines
        .iter()
        .enumerate()
        .map(|(i, l)| entry(i as u64, l))
        .collect()
}

fn entry(seq: u64, line: &str) -> Entry {
    Entry {
        seq,
        time: Utc
            .timestamp_millis_opt(1_765_000_000_000 + seq as i64 * 1_001)
            .single()
            .expect("time"),
        event_type: if seq.is_multiple_of(3) {
            "key.wrap.denied".into()
        } else {
            "key.wrapped".into()
        },
        failure: seq.is_multiple_of(3),
        line: line.to_string(),
    }
}

/// The line of record `seq` in the numbered streams.
fn numbered(seq: u64) -> String {
    format!("seq={seq} CEF:0|keyledger|keyledger|0.1.0|key.wrapped|w|3|msg=n\\=é{seq}")
}

fn batch(first: u64, n: u64) -> Vec<Entry> {
    (first..first + n).map(|s| entry(s, &numbered(s))).collect()
}

/// Sends `batch` until it is taken, as a delivery loop would.
fn send_until_taken(sink: &mut dyn Transport, batch: &[Entry]) -> usize {
    let deadline = Instant::now() + RETRY_DEADLINE;
    let mut failures = 0;
    loop {
        match sink.send(batch) {
            Ok(()) => return failures,
            Err(e) => {
                failures += 1;
                assert!(
                    Instant::now() < deadline,
                    "batch at seq {} not taken after {RETRY_DEADLINE:?}: {e}",
                    batch[0].seq
                );
                thread::sleep(Duration::from_millis(50));
            }
        }
    }
}

/// Every seq below `total` is present, the first arrivals in order; lines
/// not of the stream (none expected) are returned.
fn check_stream(lines: &[String], total: u64) -> Vec<String> {
    let mut seen = HashSet::new();
    let mut next = 0;
    let mut strangers = Vec::new();
    for line in lines {
        let seq = line
            .strip_prefix("seq=")
            .and_then(|r| r.split(' ').next())
            .and_then(|s| s.parse::<u64>().ok());
        match seq {
            Some(seq) if seq < total && *line == numbered(seq) => {
                if seen.insert(seq) {
                    assert_eq!(seq, next, "first arrivals out of order");
                    next += 1;
                }
            }
            _ => strangers.push(line.clone()),
        }
    }
    assert_eq!(
        next, total,
        "records missing: got the first {next} of {total}"
    );
    strangers
}

// ---------------------------------------------------------------- file

fn file_target(path: &Path, max_bytes: u64, keep: u32) -> Box<dyn Transport> {
    sink::open(Target::File {
        path: path.to_path_buf(),
        max_bytes,
        keep,
    })
    .expect("open file sink")
}

fn rotated(path: &Path, n: u32) -> PathBuf {
    PathBuf::from(format!("{}.{n}", path.display()))
}

#[test]
fn file_lines_arrive_byte_exact_and_new_files_are_0600() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("export.log");
    let mut sink = file_target(&path, 10 << 20, 3);
    let lines = tricky_lines();
    let entries = entries(&lines);
    sink.send(&entries[..2]).unwrap();
    sink.send(&entries[2..]).unwrap();
    sink.send(&[]).unwrap();
    let expected: String = lines.iter().map(|l| format!("{l}\n")).collect();
    assert_eq!(fs::read_to_string(&path).unwrap(), expected);
    let mode = fs::metadata(&path).unwrap().permissions().mode() & 0o777;
    assert_eq!(mode, 0o600);
}

#[test]
fn file_rotation_keeps_keep_files_and_splits_no_line() {
    let dir = tempfile::tempdir().unwrap();
    // All kept: nothing lost, every file within the limit unless it holds
    // one oversized batch only.
    let path = dir.path().join("all.log");
    let max = 2_000;
    let mut sink = file_target(&path, max, 1_000);
    let mut sent = Vec::new();
    let mut batches = Vec::new();
    let mut seq = 0;
    for round in 0..40u64 {
        let n = 1 + round % 7;
        let mut b = batch(seq, n);
        if round == 17 {
            // A batch larger than max_bytes goes whole into a fresh file.
            b.push(entry(
                seq + n,
                &format!("seq={} {}", seq + n, "big".repeat(1_000)),
            ));
        }
        seq += b.len() as u64;
        sink.send(&b).unwrap();
        sent.extend(b.iter().map(|e| e.line.clone()));
        batches.push(b);
    }
    let mut files = vec![path.clone()];
    let mut n = 1;
    while rotated(&path, n).exists() {
        files.push(rotated(&path, n));
        n += 1;
    }
    assert!(files.len() > 5, "rotated only {} times", files.len() - 1);
    let mut got = Vec::new();
    for f in files.iter().rev() {
        let text = fs::read_to_string(f).unwrap();
        assert!(text.ends_with('\n'), "{} ends mid-line", f.display());
        let size = text.len() as u64;
        let lines: Vec<String> = text.lines().map(str::to_string).collect();
        if size > max {
            assert!(
                batches
                    .iter()
                    .any(|b| b.iter().map(|e| &e.line).eq(lines.iter())),
                "{} is over the limit and not one batch",
                f.display()
            );
        }
        let mode = fs::metadata(f).unwrap().permissions().mode() & 0o777;
        assert_eq!(mode, 0o600, "{}", f.display());
        got.extend(lines);
    }
    assert_eq!(got, sent, "lines lost, split or reordered");

    // keep = 3: the live file and two rotated ones, holding the newest
    // lines whole, starting at a batch boundary.
    let path = dir.path().join("three.log");
    let mut sink = file_target(&path, max, 3);
    for b in &batches {
        sink.send(b).unwrap();
    }
    assert!(path.exists() && rotated(&path, 1).exists() && rotated(&path, 2).exists());
    assert!(!rotated(&path, 3).exists(), "more than keep files");
    let mut got = Vec::new();
    for f in [rotated(&path, 2), rotated(&path, 1), path.clone()] {
        let text = fs::read_to_string(&f).unwrap();
        assert!(text.ends_with('\n'));
        got.extend(text.lines().map(str::to_string));
    }
    assert!(
        sent.ends_with(&got),
        "the kept files are not the newest lines"
    );
    let first_kept = sent.len() - got.len();
    let mut boundary = 0;
    let boundaries: Vec<usize> = batches
        .iter()
        .map(|b| {
            boundary += b.len();
            boundary
        })
        .collect();
    assert!(
        boundaries.contains(&first_kept),
        "kept files start mid-batch"
    );

    // keep = 1: the live file only.
    let path = dir.path().join("one.log");
    let mut sink = file_target(&path, 100, 1);
    sink.send(&batch(0, 3)).unwrap();
    sink.send(&batch(3, 3)).unwrap();
    assert!(!rotated(&path, 1).exists());
    let text = fs::read_to_string(&path).unwrap();
    assert_eq!(text, (3..6).map(|s| numbered(s) + "\n").collect::<String>());
}

#[test]
fn file_config_errors() {
    let dir = tempfile::tempdir().unwrap();
    for (max_bytes, keep) in [(0, 3), (100, 0)] {
        let err = sink::open(Target::File {
            path: dir.path().join("x.log"),
            max_bytes,
            keep,
        })
        .err()
        .expect("refused");
        assert!(matches!(err, SendError::Config(_)), "{err:?}");
    }
    // A directory that does not exist: an error per batch, not a panic.
    let mut sink = file_target(&dir.path().join("missing/x.log"), 100, 2);
    assert!(matches!(sink.send(&batch(0, 1)), Err(SendError::Io(_))));
}

// ---------------------------------------------------------------- syslog

fn syslog_target(address: String, tls: Option<TlsClient>) -> Target {
    Target::Syslog {
        address,
        tls,
        hostname: "kl-host.example".into(),
        app_name: "keyledger".into(),
    }
}

#[test]
fn syslog_tcp_lines_arrive_byte_exact() {
    let receiver = Rsyslog::start(None);
    let mut sink = sink::open(syslog_target(receiver.addr(), None)).unwrap();
    let lines = tricky_lines();
    let entries = entries(&lines);
    sink.send(&entries[..3]).unwrap();
    sink.send(&entries[3..]).unwrap();
    sink.send(&[]).unwrap();
    // Acknowledged means written: no waiting.
    assert_eq!(receiver.lines(), lines);
}

/// PEM files of a throwaway CA, a server certificate it signs for
/// `localhost` and 127.0.0.1, and a client certificate it signs.
struct Pki {
    ca: PathBuf,
    cert: PathBuf,
    key: PathBuf,
    client_cert: PathBuf,
    client_key: PathBuf,
}

fn throwaway_pki(dir: &Path, ca_name: &str) -> Pki {
    use rcgen::{
        BasicConstraints, CertificateParams, CertifiedIssuer, DnType, ExtendedKeyUsagePurpose,
        IsCa, KeyPair, KeyUsagePurpose, SanType,
    };
    use std::net::{IpAddr, Ipv4Addr};
    let mut ca = CertificateParams::new(Vec::<String>::new()).unwrap();
    ca.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
    ca.distinguished_name.push(DnType::CommonName, ca_name);
    ca.key_usages = vec![KeyUsagePurpose::KeyCertSign, KeyUsagePurpose::CrlSign];
    let ca = CertifiedIssuer::self_signed(ca, KeyPair::generate().unwrap()).unwrap();
    let mut server = CertificateParams::new(vec!["localhost".to_string()]).unwrap();
    server
        .subject_alt_names
        .push(SanType::IpAddress(IpAddr::V4(Ipv4Addr::LOCALHOST)));
    server
        .distinguished_name
        .push(DnType::CommonName, "keyledger test receiver");
    let key = KeyPair::generate().unwrap();
    let cert = server.signed_by(&key, &ca).unwrap();
    let mut client = CertificateParams::new(Vec::<String>::new()).unwrap();
    client
        .distinguished_name
        .push(DnType::CommonName, "keyledger export");
    client.extended_key_usages = vec![ExtendedKeyUsagePurpose::ClientAuth];
    let client_key = KeyPair::generate().unwrap();
    let client_cert = client.signed_by(&client_key, &ca).unwrap();
    let prefix = ca_name.replace(' ', "_");
    let file = |name: &str, pem: String| {
        let path = dir.join(format!("{prefix}-{name}"));
        fs::write(&path, pem).unwrap();
        fs::set_permissions(&path, fs::Permissions::from_mode(0o600)).unwrap();
        path
    };
    Pki {
        ca: file("ca.pem", ca.pem()),
        cert: file("server.pem", cert.pem()),
        key: file("server.key", key.serialize_pem()),
        client_cert: file("client.pem", client_cert.pem()),
        client_key: file("client.key", client_key.serialize_pem()),
    }
}

#[test]
fn syslog_tls_delivers_and_refuses_a_wrong_name_or_ca() {
    let dir = tempfile::tempdir().unwrap();
    let Pki { ca, cert, key, .. } = throwaway_pki(dir.path(), "keyledger test CA");
    let other_ca = throwaway_pki(dir.path(), "another CA").ca;
    let receiver = Rsyslog::start(Some((&cert, &key)));
    let tls = |name: &str, ca: Option<&Path>| TlsClient {
        server_name: name.into(),
        ca_file: ca.map(Path::to_path_buf),
        client_cert: None,
        client_key: None,
    };

    let lines = tricky_lines();
    let entries = entries(&lines);
    for name in ["localhost", "127.0.0.1"] {
        let mut sink =
            sink::open(syslog_target(receiver.addr(), Some(tls(name, Some(&ca))))).unwrap();
        sink.send(&entries).unwrap();
    }
    let twice: Vec<String> = lines.iter().chain(lines.iter()).cloned().collect();
    assert_eq!(receiver.lines(), twice);
    // The sessions (the batches' and the probes') ended cleanly.
    let internal = receiver.internal_log();
    assert!(!internal.contains("error"), "rsyslogd: {internal}");

    let refused = [
        tls("other.example", Some(&ca)),
        tls("localhost", Some(&other_ca)),
        // The system's roots do not hold the throwaway CA.
        tls("localhost", None),
    ];
    for t in refused {
        let what = format!("{t:?}");
        let result =
            sink::open(syslog_target(receiver.addr(), Some(t))).and_then(|mut s| s.send(&entries));
        match result {
            Err(SendError::Connect(msg)) => {
                assert!(
                    msg.contains("certificate") || msg.contains("Certificate"),
                    "{what}: {msg}"
                )
            }
            // No system roots at all is a configuration error.
            Err(SendError::Config(msg)) if what.contains("ca_file: None") => {
                assert!(msg.contains("root"), "{msg}")
            }
            other => panic!("{what}: {other:?}"),
        }
    }
    assert_eq!(receiver.lines(), twice, "a refused connection delivered");
}

/// A pseudo-random number below `max` (the clock's nanoseconds).
fn jitter_micros(max: u64) -> u64 {
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.subsec_nanos())
        .unwrap_or(0);
    u64::from(nanos / 1_000) % max
}

/// How a kill test runs: records, records per batch, kills, and whether the
/// kills come between batches (from the sending thread) or at any time
/// (from another thread, batches in flight).
struct KillPlan {
    total: u64,
    per_batch: u64,
    kills: usize,
    between_batches: bool,
}

/// Sends `plan.total` records in batches, SIGKILLing and restarting the
/// receiver `plan.kills` times and sending failed batches again; returns
/// the lines received and how many sends failed.
fn syslog_kill9_run(tls: Option<(&Path, &Path, &Path)>, plan: KillPlan) -> (Vec<String>, usize) {
    let receiver = Arc::new(Mutex::new(Rsyslog::start(tls.map(|(_, c, k)| (c, k)))));
    let addr = receiver.lock().unwrap().addr();
    let client = tls.map(|(ca, _, _)| TlsClient {
        server_name: "localhost".into(),
        ca_file: Some(ca.to_path_buf()),
        client_cert: None,
        client_key: None,
    });
    let mut sink = sink::open(syslog_target(addr, client)).unwrap();
    let KillPlan {
        total,
        per_batch,
        kills,
        between_batches,
    } = plan;
    let mut failures = 0;
    if between_batches {
        let kill_at: Vec<u64> = (1..=kills as u64)
            .map(|k| k * total / (kills as u64 + 1))
            .collect();
        for first in (0..total).step_by(per_batch as usize) {
            if kill_at
                .iter()
                .any(|k| (first..first + per_batch).contains(k))
            {
                receiver.lock().unwrap().kill9();
                assert!(
                    sink.send(&batch(first, per_batch)).is_err(),
                    "sent to a killed receiver"
                );
                failures += 1;
                receiver.lock().unwrap().restart();
            }
            failures += send_until_taken(sink.as_mut(), &batch(first, per_batch));
        }
    } else {
        // The killer kills while batches are in flight.
        let (tx, rx) = mpsc::channel::<()>();
        let killer_receiver = Arc::clone(&receiver);
        let killer = thread::spawn(move || {
            for _ in 0..kills {
                if rx.recv().is_err() {
                    return;
                }
                // Somewhere in the batch (or the next): 0-20 ms.
                thread::sleep(Duration::from_micros(jitter_micros(20_000)));
                killer_receiver.lock().unwrap().kill9();
                thread::sleep(Duration::from_millis(300));
                killer_receiver.lock().unwrap().restart();
            }
        });
        let kill_every = total / (kills as u64 + 1);
        for first in (0..total).step_by(per_batch as usize) {
            if first > 0 && first % kill_every < per_batch && first / kill_every <= kills as u64 {
                let _ = tx.send(());
            }
            failures += send_until_taken(sink.as_mut(), &batch(first, per_batch));
        }
        drop(tx);
        killer.join().unwrap();
    }
    let lines = receiver.lock().unwrap().lines();
    (lines, failures)
}

const BETWEEN_BATCHES: KillPlan = KillPlan {
    total: 3_000,
    per_batch: 25,
    kills: 3,
    between_batches: true,
};

#[test]
fn syslog_tcp_receiver_killed_between_batches_loses_nothing() {
    let (lines, failures) = syslog_kill9_run(None, BETWEEN_BATCHES);
    let total = BETWEEN_BATCHES.total;
    assert!(failures > 0, "no send failed: the kills did not happen");
    let strangers = check_stream(&lines, total);
    assert!(strangers.is_empty(), "unexpected lines: {strangers:?}");
}

#[test]
fn syslog_tls_receiver_killed_between_batches_loses_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let Pki { ca, cert, key, .. } = throwaway_pki(dir.path(), "kill CA");
    let (lines, failures) = syslog_kill9_run(Some((&ca, &cert, &key)), BETWEEN_BATCHES);
    let total = BETWEEN_BATCHES.total;
    assert!(failures > 0, "no send failed: the kills did not happen");
    let strangers = check_stream(&lines, total);
    assert!(strangers.is_empty(), "unexpected lines: {strangers:?}");
}

/// Kills while batches are in flight: a receiver killed after reading a
/// batch but before writing it closes like an acknowledgement, which the
/// sink's probe after the end of stream catches. The receiver's own torn
/// write at a kill may leave one stray line per kill.
fn mid_batch(tls: Option<(&Path, &Path, &Path)>) {
    let plan = KillPlan {
        total: 80_000,
        per_batch: 2_000,
        kills: 10,
        between_batches: false,
    };
    let (total, kills) = (plan.total, plan.kills);
    let (lines, failures) = syslog_kill9_run(tls, plan);
    assert!(failures > 0, "no send failed: the kills did not happen");
    let strangers = check_stream(&lines, total);
    assert!(strangers.len() <= kills, "unexpected lines: {strangers:?}");
}

#[test]
fn syslog_tcp_receiver_killed_mid_batch_loses_nothing() {
    mid_batch(None);
}

#[test]
fn syslog_tls_receiver_killed_mid_batch_loses_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let Pki { ca, cert, key, .. } = throwaway_pki(dir.path(), "kill CA");
    mid_batch(Some((&ca, &cert, &key)));
}

#[test]
fn syslog_unreachable_is_a_connect_error() {
    let port = {
        let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        l.local_addr().unwrap().port()
    };
    let mut sink = sink::open(syslog_target(format!("127.0.0.1:{port}"), None)).unwrap();
    assert!(matches!(
        sink.send(&batch(0, 1)),
        Err(SendError::Connect(_))
    ));
    assert!(matches!(
        sink::open(syslog_target("no-port".into(), None)).err(),
        Some(SendError::Config(_))
    ));
}

// ---------------------------------------------------------------- HEC

fn hec_target(url: String, token: &str, json_event: bool) -> Target {
    Target::Hec {
        url,
        token: Zeroizing::new(token.to_string()),
        tls: None,
        index: Some("keyledger_audit".into()),
        source: "keyledger:instance-1".into(),
        sourcetype: "keyledger:cef".into(),
        host: "kl-host.example".into(),
        json_event,
    }
}

#[test]
fn hec_events_arrive_byte_exact_with_their_fields() {
    let receiver = HecReceiver::start(TOKEN);
    let mut sink = sink::open(hec_target(receiver.url(), TOKEN, false)).unwrap();
    let lines = tricky_lines();
    let entries = entries(&lines);
    sink.send(&entries[..2]).unwrap();
    sink.send(&entries[2..]).unwrap();
    sink.send(&[]).unwrap();
    let events = receiver.events();
    assert_eq!(events.len(), lines.len());
    for ((event, line), e) in events.iter().zip(&lines).zip(&entries) {
        assert_eq!(event["event"].as_str(), Some(line.as_str()));
        assert_eq!(event["host"], "kl-host.example");
        assert_eq!(event["source"], "keyledger:instance-1");
        assert_eq!(event["sourcetype"], "keyledger:cef");
        assert_eq!(event["index"], "keyledger_audit");
        let time = event["time"].as_f64().expect("time is a number");
        assert_eq!((time * 1000.0).round() as i64, e.time.timestamp_millis());
    }

    // json_event: JSON lines go as JSON values, other lines as strings;
    // no index field when None.
    let mut target = hec_target(receiver.url(), TOKEN, true);
    if let Target::Hec { index, .. } = &mut target {
        *index = None;
    }
    let mut sink = sink::open(target).unwrap();
    let json_line = r#"{"seq":9,"s":"é|=\\","n":[1,2.5,null]}"#;
    sink.send(&[entry(9, json_line), entry(10, "not json |=\\")])
        .unwrap();
    let events = receiver.events();
    let (a, b) = (&events[lines.len()], &events[lines.len() + 1]);
    assert_eq!(
        a["event"],
        serde_json::from_str::<serde_json::Value>(json_line).unwrap()
    );
    assert_eq!(b["event"], "not json |=\\");
    assert!(a.get("index").is_none());
}

#[test]
fn hec_wrong_or_missing_token_is_refused_and_nothing_stored() {
    let receiver = HecReceiver::start(TOKEN);
    let wrong = "99999999-wrong-token-0000-000000000000";
    let target = hec_target(receiver.url(), wrong, false);
    let shown = format!("{target:?}");
    assert!(
        !shown.contains(wrong) && shown.contains("redacted"),
        "{shown}"
    );
    let mut sink = sink::open(target).unwrap();
    let err = sink.send(&batch(0, 5)).unwrap_err();
    match &err {
        SendError::Refused { status, text } => {
            assert_eq!(*status, 403);
            assert_eq!(text, "Invalid token");
        }
        other => panic!("{other:?}"),
    }
    for shown in [err.to_string(), format!("{err:?}")] {
        assert!(!shown.contains(wrong), "{shown}");
    }
    assert!(receiver.events().is_empty());

    // An empty token is refused at open.
    assert!(matches!(
        sink::open(hec_target(receiver.url(), "", false)).err(),
        Some(SendError::Config(_))
    ));
}

#[test]
fn hec_token_never_shows_in_errors_or_debug() {
    let receiver = HecReceiver::start(TOKEN);
    let url = receiver.url();
    drop(receiver);
    let targets = [
        hec_target(url.clone(), TOKEN, false),
        hec_target("ftp://host/x".into(), TOKEN, false),
        hec_target(url.replace("http://", "https://"), TOKEN, false),
    ];
    for target in targets {
        let shown = format!("{target:?}");
        assert!(!shown.contains(TOKEN), "{shown}");
        let err = match sink::open(target.clone()) {
            Err(e) => e,
            Ok(mut s) => s.send(&batch(0, 1)).expect_err("nothing listens"),
        };
        for shown in [err.to_string(), format!("{err:?}")] {
            assert!(!shown.contains(TOKEN), "{shown}");
            assert!(!shown.contains(&TOKEN[..8]), "{shown}");
        }
    }
}

#[test]
fn hec_receiver_killed_mid_stream_loses_nothing() {
    let receiver = Arc::new(Mutex::new(HecReceiver::start(TOKEN)));
    let url = receiver.lock().unwrap().url();
    let mut sink = sink::open(hec_target(url, TOKEN, false)).unwrap();
    let (total, per_batch, kills) = (3_000u64, 25u64, 3u64);
    let (tx, rx) = mpsc::channel::<()>();
    let killer_receiver = Arc::clone(&receiver);
    let killer = thread::spawn(move || {
        for _ in 0..kills {
            if rx.recv().is_err() {
                return;
            }
            killer_receiver.lock().unwrap().kill9();
            thread::sleep(Duration::from_millis(300));
            killer_receiver.lock().unwrap().restart();
        }
    });
    let kill_every = total / (kills + 1);
    let mut failures = 0;
    for first in (0..total).step_by(per_batch as usize) {
        if first > 0 && first % kill_every < per_batch && first / kill_every <= kills {
            let _ = tx.send(());
        }
        failures += send_until_taken(sink.as_mut(), &batch(first, per_batch));
    }
    drop(tx);
    killer.join().unwrap();
    assert!(failures > 0, "no send failed: the kills did not happen");
    let lines: Vec<String> = receiver
        .lock()
        .unwrap()
        .events()
        .iter()
        .map(|e| e["event"].as_str().expect("string event").to_string())
        .collect();
    let strangers = check_stream(&lines, total);
    assert!(strangers.is_empty(), "unexpected events: {strangers:?}");
}

#[test]
fn hec_over_tls_checks_the_receiver_and_presents_a_client_certificate() {
    let dir = tempfile::tempdir().unwrap();
    let pki = throwaway_pki(dir.path(), "hec CA");
    let other = throwaway_pki(dir.path(), "other hec CA");
    let receiver = HecReceiver::start_tls(TOKEN, &pki.cert, &pki.key, Some(&pki.ca));
    let target = |host: &str, ca: &Path, client: Option<&Pki>| {
        let mut t = hec_target(receiver.url_for(host), TOKEN, false);
        if let Target::Hec { tls, .. } = &mut t {
            *tls = Some(TlsClient {
                server_name: host.into(),
                ca_file: Some(ca.to_path_buf()),
                client_cert: client.map(|p| p.client_cert.clone()),
                client_key: client.map(|p| p.client_key.clone()),
            });
        }
        t
    };
    let lines = tricky_lines();
    let entries = entries(&lines);
    for host in ["localhost", "127.0.0.1"] {
        let mut sink = sink::open(target(host, &pki.ca, Some(&pki))).unwrap();
        sink.send(&entries).unwrap();
    }
    let got: Vec<String> = receiver
        .events()
        .iter()
        .map(|e| e["event"].as_str().unwrap().to_string())
        .collect();
    assert_eq!(got, [lines.clone(), lines.clone()].concat());

    // Another CA's roots; no client certificate; a client certificate the
    // receiver does not trust: refused, nothing stored.
    let err = sink::open(target("localhost", &other.ca, Some(&pki)))
        .unwrap()
        .send(&entries)
        .unwrap_err();
    assert!(
        matches!(&err, SendError::Connect(m) if m.contains("UnknownIssuer")),
        "{err}"
    );
    let refused = [
        target("localhost", &other.ca, Some(&pki)),
        target("localhost", &pki.ca, None),
        target("localhost", &pki.ca, Some(&other)),
    ];
    for t in refused {
        let what = format!("{t:?}");
        let err = sink::open(t).unwrap().send(&entries).expect_err(&what);
        // Our check of the receiver fails at the handshake; the receiver's
        // refusal of our certificate may only show when writing.
        assert!(
            matches!(err, SendError::Connect(_) | SendError::Io(_)),
            "{what}: {err}"
        );
        assert!(!err.to_string().contains(TOKEN));
    }
    assert_eq!(receiver.events().len(), 2 * lines.len());

    // The certificate is checked against the URL's host, so server_name
    // must be that host.
    let mut t = target("localhost", &pki.ca, Some(&pki));
    if let Target::Hec { tls: Some(tls), .. } = &mut t {
        tls.server_name = "other.example".into();
    }
    assert!(matches!(sink::open(t).err(), Some(SendError::Config(_))));
}
