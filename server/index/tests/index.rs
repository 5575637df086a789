//! The index against the real LanceDB (and, where named, the real MiniLM model): incremental
//! updates, deletions, schema rebuilds, ignore rules, secrets, size/binary limits, overlays,
//! filters, and that the workspace is never written to.

use codeforge_config::{EmbeddingSettings, Settings};
use codeforge_index::{
    CancelFlag, OpenOutcome, SearchQuery, UpdateRequest, UpdateSummary, WorkspaceIndex, index_dir,
};

use codeforge_testkit::{TempWorkspace, real_model_dir, snapshot};

/// A temp copy of a fixture workspace and a separate temp cache dir.
type Env = TempWorkspace;

fn env(fixture_name: &str) -> Env {
    codeforge_testkit::workspace(fixture_name)
}

fn lexical_settings() -> Settings {
    let mut s = Settings::default();
    s.embeddings = EmbeddingSettings::None;
    s
}

async fn open(e: &Env, settings: Settings) -> WorkspaceIndex {
    WorkspaceIndex::open(&e.root, &e.cache, settings)
        .await
        .unwrap()
}

async fn update(i: &WorkspaceIndex) -> UpdateSummary {
    i.update(UpdateRequest::default(), &|_| {}, &CancelFlag::new())
        .await
        .unwrap()
}

async fn names(i: &WorkspaceIndex, q: &str) -> Vec<String> {
    i.search(&SearchQuery::new(q, 20))
        .await
        .unwrap()
        .into_iter()
        .map(|h| h.qualified_name)
        .collect()
}

#[tokio::test]
async fn incremental_updates_parse_only_what_changed() {
    let e = env("mixed");
    let i = open(&e, lexical_settings()).await;
    let first = update(&i).await;
    assert_eq!(first.files, 7, "{first:#?}");
    assert_eq!(first.parsed, 7);
    assert!(first.symbols >= 15, "{first:#?}");
    assert_eq!(first.by_language["python"]["function"], 5, "{first:#?}");
    assert_eq!(first.by_language["rust"]["struct"], 1);
    assert_eq!(first.by_language["java"]["method"], 1);

    let again = update(&i).await;
    assert_eq!((again.parsed, again.unchanged, again.removed), (0, 7, 0));
    assert_eq!(again.symbols, first.symbols);

    // Touching a file without changing its content re-reads it but does not re-parse it.
    let settings = e.root.join("app/settings.py");
    let text = std::fs::read_to_string(&settings).unwrap();
    std::thread::sleep(std::time::Duration::from_millis(20));
    std::fs::write(&settings, &text).unwrap();
    let touched = update(&i).await;
    assert_eq!(touched.parsed, 0, "same content must not be re-parsed");

    // A change replaces that file's rows.
    std::fs::write(
        &settings,
        text.replace("def merge_options", "def combine_option_sets"),
    )
    .unwrap();
    let changed = update(&i).await;
    assert_eq!(changed.parsed, 1);
    assert_eq!(changed.symbols, first.symbols);
    let hits = names(&i, "combine_option_sets").await;
    assert_eq!(
        hits.first().map(String::as_str),
        Some("app.settings.combine_option_sets")
    );
    assert!(
        !names(&i, "merge_options")
            .await
            .iter()
            .any(|n| n.ends_with("merge_options"))
    );

    // A deleted file's rows disappear.
    std::fs::remove_file(e.root.join("app/geometry.py")).unwrap();
    let deleted = update(&i).await;
    assert_eq!(deleted.removed, 1);
    assert_eq!(deleted.files, 6);
    assert!(names(&i, "circle_area").await.is_empty());

    // Reopening (a restart) re-parses nothing.
    drop(i);
    let i = open(&e, lexical_settings()).await;
    assert_eq!(i.open_outcome(), &OpenOutcome::Existing);
    let restarted = update(&i).await;
    assert_eq!(restarted.parsed, 0);
    assert_eq!(restarted.files, 6);
}

#[tokio::test]
async fn schema_mismatch_rebuilds() {
    let e = env("mixed");
    let i = open(&e, lexical_settings()).await;
    update(&i).await;
    let dir = index_dir(&e.cache, &e.root.canonicalize().unwrap());
    drop(i);
    let meta = dir.join("meta.json");
    let text = std::fs::read_to_string(&meta).unwrap();
    let mut v: serde_json::Value = serde_json::from_str(&text).unwrap();
    v["schema_version"] = serde_json::json!(0);
    std::fs::write(&meta, v.to_string()).unwrap();
    let i = open(&e, lexical_settings()).await;
    assert!(matches!(i.open_outcome(), OpenOutcome::Rebuilt(r) if r.contains("schema")));
    let s = update(&i).await;
    assert_eq!(s.parsed, 7, "a rebuilt index starts from nothing");
    assert!(s.rebuilt.is_some());
}

#[tokio::test]
async fn ignore_rules_secrets_limits_and_vendored_dirs() {
    let e = env("mixed");
    let w = &e.root;
    let write = |rel: &str, text: &[u8]| {
        let p = w.join(rel);
        std::fs::create_dir_all(p.parent().unwrap()).unwrap();
        std::fs::write(p, text).unwrap();
    };
    // Secrets: by name (whatever ignore files say) and by content.
    write(".env", b"API_TOKEN=zzsecretenvzz\n");
    write("credentials.py", b"def zzcredfunczz():\n    return 'x'\n");
    write("deploy/server.pem", b"-----BEGIN PRIVATE KEY-----\nzz\n");
    let key_body = "MIIEowIBAAKCAQEAq7Zp3Xc9Lm2Vb8Nw4Rt6Yk1Hs5Dj0GfAb12Cd34Ef56Gh78Ij\n".repeat(3);
    write(
        "app/keys.py",
        format!(
            "def zzkeyholderzz():\n    return '''-----BEGIN RSA PRIVATE KEY-----\n{key_body}-----END RSA PRIVATE KEY-----'''\n"
        )
        .as_bytes(),
    );
    // Provider tokens and high-entropy assignments (built here, so this file holds none).
    write(
        "app/client.py",
        format!(
            "GH = '{}_{}'\n\ndef zzghclientzz():\n    return GH\n",
            "ghp", "q7Zp3Xc9Lm2Vb8Nw4Rt6Yk1Hs5Dj0GfAb123"
        )
        .as_bytes(),
    );
    write(
        "app/apiconf.py",
        format!(
            "API_KEY = \"{}{}\"\n\ndef zzsettingszz():\n    return API_KEY\n",
            "q7Zp3Xc9Lm2Vb8Nw", "4Rt6Yk1Hs5Dj0Gf"
        )
        .as_bytes(),
    );
    // Ignored: .gitignore (no git repo needed), .codeforgeignore, configured excludes.
    write(".gitignore", b"generated/\n");
    write("generated/zzgenzz.py", b"def zzgeneratedzz(): pass\n");
    write(".codeforgeignore", b"scratch_*.py\n");
    write("scratch_one.py", b"def zzscratchzz(): pass\n");
    write("extra/skipme.py", b"def zzexcludedzz(): pass\n");
    // Vendored and build output.
    write("node_modules/pkg/index.py", b"def zznodemodzz(): pass\n");
    write("target/debug/build.rs", b"fn zztargetzz() {}\n");
    write("venvx/pyvenv.cfg", b"home = /usr\n");
    write("venvx/lib/site.py", b"def zzvenvzz(): pass\n");
    // Too large and binary.
    write(
        "big.py",
        format!("def zzbigzz(): pass\n{}", "#".repeat(5000)).as_bytes(),
    );
    write("blob.py", b"def zzblobzz(): pass\n\0\0\0");
    write("latin.py", b"def zzlatinzz(): return '\xe9'\n");

    let mut settings = lexical_settings();
    settings.index.max_file_size = 4096;
    settings.index.exclude = vec!["extra/**".to_string()];
    let before = snapshot(w);
    let i = open(&e, settings).await;
    let s = update(&i).await;
    assert_eq!(snapshot(w), before, "indexing wrote into the workspace");
    assert!(!e.cache.starts_with(w));

    assert_eq!(s.files, 7, "only the fixture's own files: {s:#?}");
    // credentials.py (by name); app/keys.py, app/client.py, app/apiconf.py (by content).
    assert_eq!(s.skipped.get("secret"), Some(&4), "{s:#?}");
    assert_eq!(s.skipped.get("too_large"), Some(&1));
    assert_eq!(s.skipped.get("binary"), Some(&1));
    assert_eq!(s.skipped.get("not_utf8"), Some(&1));
    assert!(s.vendored_dirs >= 3, "{s:#?}");
    for token in [
        "zzsecretenvzz",
        "zzcredfunczz",
        "zzkeyholderzz",
        "zzghclientzz",
        "zzsettingszz",
        "zzgeneratedzz",
        "zzscratchzz",
        "zzexcludedzz",
        "zznodemodzz",
        "zztargetzz",
        "zzvenvzz",
        "zzbigzz",
        "zzblobzz",
        "zzlatinzz",
        "BEGIN",
    ] {
        assert!(names(&i, token).await.is_empty(), "{token} is searchable");
    }
    // A previously indexed file that turns into a secret leaves the index.
    std::fs::write(
        w.join("app/geometry.py"),
        format!(
            "def circle_area(r):\n    k = '{}{}'\n",
            "AKIA", "IOSFODNN7EXAMPLE"
        ),
    )
    .unwrap();
    let s = update(&i).await;
    assert_eq!(s.removed, 1);
    assert!(names(&i, "circle_area").await.is_empty());
}

#[tokio::test]
async fn overlays_index_unsaved_buffers_then_disk_wins_again() {
    let e = env("mixed");
    let i = open(&e, lexical_settings()).await;
    update(&i).await;
    let rel = "app/geometry.py".to_string();
    let disk = std::fs::read_to_string(e.root.join(&rel)).unwrap();
    let buffer = format!("{disk}\n\ndef zzunsavedzz():\n    pass\n");
    let req = UpdateRequest {
        overlays: [(rel.clone(), buffer)].into_iter().collect(),
        only: Some(vec![rel.clone()]),
        skip_embedding: true,
    };
    let s = i.update(req, &|_| {}, &CancelFlag::new()).await.unwrap();
    assert_eq!(s.parsed, 1);
    assert_eq!(names(&i, "zzunsavedzz").await, ["app.geometry.zzunsavedzz"]);
    assert_eq!(
        std::fs::read_to_string(e.root.join(&rel)).unwrap(),
        disk,
        "the buffer is never written to disk"
    );
    // The next plain update goes back to the disk content.
    let s = update(&i).await;
    assert_eq!(s.parsed, 1);
    assert!(names(&i, "zzunsavedzz").await.is_empty());
}

#[tokio::test]
async fn filters_by_language_kind_and_path() {
    let e = env("mixed");
    let i = open(&e, lexical_settings()).await;
    update(&i).await;
    let mut q = SearchQuery::new("checksum crc32 retry backoff rate limiter", 20);
    let all = i.search(&q).await.unwrap();
    assert!(all.iter().any(|h| h.language == "java") && all.iter().any(|h| h.language == "rust"));
    q.language = Some("rust".into());
    let rust = i.search(&q).await.unwrap();
    assert!(!rust.is_empty() && rust.iter().all(|h| h.language == "rust"));
    q.kind = Some("struct".into());
    let structs = i.search(&q).await.unwrap();
    assert_eq!(structs.len(), 1);
    assert_eq!(structs[0].qualified_name, "crate::RateLimiter");
    assert_eq!(structs[0].line, 14);

    let mut q = SearchQuery::new("options settings", 20);
    q.path_prefix = Some("tests/".into());
    let hits = i.search(&q).await.unwrap();
    assert!(!hits.is_empty());
    assert!(
        hits.iter().all(|h| h.path.starts_with("tests/")),
        "{hits:?}"
    );
    assert!(hits[0].is_test);

    q.kind = Some("spaceship".into());
    assert!(
        i.search(&q).await.is_err(),
        "unknown kinds are rejected, not ignored"
    );
}

#[tokio::test]
async fn lexical_search_from_memory_agrees_with_lancedb_and_follows_edits() {
    let e = env("mixed");
    let i = open(&e, lexical_settings()).await;
    update(&i).await;
    assert!(i.try_load_names().await.unwrap());
    let key = |hits: &[codeforge_index::Hit]| -> Vec<(String, u32)> {
        let mut v: Vec<_> = hits.iter().map(|h| (h.path.clone(), h.line)).collect();
        v.sort();
        v
    };
    for (text, language, kind) in [
        ("checksum crc32 retry backoff rate limiter", None, None),
        ("RateLimiter", None, None),
        ("parse the config options", None, None),
        ("rate limiter", Some("rust"), None),
        ("retry backoff", None, Some("function")),
    ] {
        let mut q = SearchQuery::new(text, 100);
        q.language = language.map(str::to_string);
        q.kind = kind.map(str::to_string);
        let memory = i.search_uncached(&q).await.unwrap();
        let store = i.search_store_only(&q).await.unwrap();
        assert!(!memory.is_empty(), "{text}");
        assert_eq!(key(&memory), key(&store), "{text}: the same symbols match");
        assert_eq!(
            (&memory[0].path, memory[0].line),
            (&store[0].path, store[0].line),
            "{text}: the same first hit"
        );
    }
    // An edit is found from memory at once, and what it removed is gone.
    let q = SearchQuery::new("send email smtp relay", 50);
    let before = i.search_uncached(&q).await.unwrap();
    assert!(before.iter().any(|h| h.path == "app/mailer.py"));
    std::fs::write(
        e.root.join("app/mailer.py"),
        "def zephyr_quantum_flux(x):\n    return x\n",
    )
    .unwrap();
    update(&i).await;
    let hits = i
        .search_uncached(&SearchQuery::new("zephyr quantum", 5))
        .await
        .unwrap();
    assert_eq!(hits[0].name, "zephyr_quantum_flux");
    let after = i.search_uncached(&q).await.unwrap();
    assert!(after.iter().all(|h| h.path != "app/mailer.py"), "{after:?}");
    assert_eq!(key(&after), key(&i.search_store_only(&q).await.unwrap()));
}

#[tokio::test]
async fn cancelled_update_leaves_an_index_the_next_update_completes() {
    let e = env("mixed");
    // Many files so that several batches are written.
    for n in 0..600 {
        std::fs::write(
            e.root.join(format!("app/gen_{n}.py")),
            format!("def generated_{n}(x):\n    \"\"\"Generated {n}.\"\"\"\n    return x + {n}\n"),
        )
        .unwrap();
    }
    let i = open(&e, lexical_settings()).await;
    let cancel = CancelFlag::new();
    let c2 = cancel.clone();
    let report = move |p: codeforge_index::Progress| {
        if let codeforge_index::Progress::Parsing { done, .. } = p
            && done > 0
        {
            c2.cancel();
        }
    };
    let r = i.update(UpdateRequest::default(), &report, &cancel).await;
    assert!(r.is_err(), "the update should stop when cancelled");
    let s = update(&i).await;
    assert_eq!(s.files, 607);
    assert_eq!(s.symbols, i.store().count_symbols(None).await.unwrap());
    assert!(
        s.parsed > 0 && s.parsed < 607,
        "work done before the cancel is kept: {}",
        s.parsed
    );
    assert_eq!(
        names(&i, "generated_599").await.first().map(String::as_str),
        Some("app.gen_599.generated_599")
    );
}

#[tokio::test]
async fn missing_embedding_model_means_lexical_search_with_a_reason() {
    let e = env("mixed");
    let mut settings = Settings::default();
    settings.embeddings = EmbeddingSettings::Local {
        model_dir: Some(e.cache.join("no-such-model")),
        batch_size: 8,
    };
    let i = open(&e, settings).await;
    let reason = i.lexical_only_reason().expect("a reason").to_string();
    assert!(
        reason.contains("lexical only") && reason.contains("codeforge model pull embeddings"),
        "{reason}"
    );
    let s = update(&i).await;
    assert_eq!((s.embedded, s.vectors), (0, Some(0)));
    assert_eq!(s.embeddings, "unavailable");
    assert_eq!(
        names(&i, "read_options").await.first().map(String::as_str),
        Some("app.settings.read_options")
    );
}

#[tokio::test]
async fn real_minilm_finds_by_meaning_and_restarts_embed_nothing() {
    let e = env("mixed");
    let mut settings = Settings::default();
    settings.embeddings = EmbeddingSettings::Local {
        model_dir: Some(real_model_dir()),
        batch_size: 16,
    };
    let i = open(&e, settings.clone()).await;
    assert!(i.lexical_only_reason().is_none());
    let s = update(&i).await;
    assert_eq!(s.embeddings, "local:all-MiniLM-L6-v2");
    assert_eq!(s.embedded, s.symbols);
    assert_eq!(s.vectors, Some(s.symbols));

    // No word of the query is in `read_options` or its docstring: only meaning connects them.
    let hits = i
        .search(&SearchQuery::new("parse the config file", 5))
        .await
        .unwrap();
    let top: Vec<&str> = hits.iter().map(|h| h.qualified_name.as_str()).collect();
    assert_eq!(top.first(), Some(&"app.settings.read_options"), "{top:?}");
    assert!(hits[0].matched_by.contains(&"semantic"));

    // With the name layer loaded, vectors are searched from memory: the same answer.
    i.load_names().await.unwrap();
    assert_eq!(i.with_names(|t| t.vector_count()), Some(s.symbols));
    let from_memory = i
        .search_uncached(&SearchQuery::new("parse the config file", 5))
        .await
        .unwrap();
    assert_eq!(from_memory[0].qualified_name, "app.settings.read_options");
    assert!(from_memory[0].matched_by.contains(&"semantic"));
    // An edit's symbols are embedded and reach the layer with the write.
    std::fs::write(
        e.root.join("weather.py"),
        "def tomorrows_forecast(city):\n    \"\"\"Predict rain or sun for the next day.\"\"\"\n",
    )
    .unwrap();
    update(&i).await;
    assert_eq!(i.with_names(|t| t.vector_count()), Some(s.symbols + 1));
    let hits = i
        .search_uncached(&SearchQuery::new("will it be sunny", 3))
        .await
        .unwrap();
    assert_eq!(
        hits[0].qualified_name, "weather.tomorrows_forecast",
        "{hits:?}"
    );
    assert!(hits[0].matched_by.contains(&"semantic"));
    // A second edit of that file embeds only the symbol whose text changed; the other keeps
    // its stored vector.
    std::fs::write(
        e.root.join("weather.py"),
        "def tomorrows_forecast(city):\n    \"\"\"Predict rain or sun for the next day.\"\"\"\n\n\
         def wind_speed(city):\n    \"\"\"How strong the wind blows.\"\"\"\n",
    )
    .unwrap();
    let second = update(&i).await;
    assert_eq!((second.parsed, second.embedded), (1, 1), "{second:?}");
    assert_eq!(i.with_names(|t| t.vector_count()), Some(s.symbols + 2));
    assert_eq!(i.store().count_vectors().await.unwrap(), s.symbols + 2);
    let hits = i
        .search_uncached(&SearchQuery::new("will it be sunny", 3))
        .await
        .unwrap();
    assert_eq!(hits[0].qualified_name, "weather.tomorrows_forecast");
    std::fs::remove_file(e.root.join("weather.py")).unwrap();
    update(&i).await;
    assert_eq!(i.with_names(|t| t.vector_count()), Some(s.symbols));
    // The removed file's vectors went with it from the store (they live in their own table).
    assert_eq!(i.store().count_vectors().await.unwrap(), s.symbols);

    drop(i);
    let i = open(&e, settings).await;
    let again = update(&i).await;
    assert_eq!(
        (again.parsed, again.embedded),
        (0, 0),
        "a restart re-embeds nothing"
    );
    assert_eq!(again.vectors, Some(again.symbols));
    // A fresh name layer reads the stored vectors back onto its symbols.
    i.load_names().await.unwrap();
    assert_eq!(i.with_names(|t| t.vector_count()), Some(again.symbols));

    // Switching the embedder to "none" keeps the vectors; switching models rebuilds.
    let mut other = Settings::default();
    other.embeddings = EmbeddingSettings::None;
    drop(i);
    let i = open(&e, other).await;
    assert_eq!(i.open_outcome(), &OpenOutcome::Existing);
}

#[tokio::test]
async fn real_minilm_embeddings_are_unit_length_and_meaningful() {
    let m = codeforge_index::MiniLm::load(&real_model_dir()).unwrap();
    let v = m
        .embed_blocking(&[
            "parse the config file".to_string(),
            "load settings from a TOML document".to_string(),
            "compute the area of a circle".to_string(),
        ])
        .unwrap();
    assert_eq!(v.len(), 3);
    for x in &v {
        assert_eq!(x.len(), 384);
        let n: f32 = x.iter().map(|a| a * a).sum::<f32>().sqrt();
        assert!((n - 1.0).abs() < 1e-4, "norm {n}");
    }
    let dot = |a: &[f32], b: &[f32]| a.iter().zip(b).map(|(x, y)| x * y).sum::<f32>();
    assert!(dot(&v[0], &v[1]) > dot(&v[0], &v[2]) + 0.1);
}

/// The int8 encoder (the default where the CPU has AVX-512 VNNI) against candle's f32 model on
/// texts as the indexer builds them, short and long (cut at 128 tokens): the same vectors to a
/// cosine of 0.995, and a text's vector does not depend on the texts beside it in a call.
#[tokio::test]
async fn the_int8_encoder_gives_the_f32_models_vectors() {
    let dir = real_model_dir();
    let fast = codeforge_index::MiniLm::load(&dir).unwrap();
    let exact = codeforge_index::MiniLm::load_with(
        &dir,
        codeforge_index::MiniLmOptions {
            int8: false,
            ..Default::default()
        },
    )
    .unwrap();
    let want = if codeforge_model::vnni_kernels_available() {
        "int8"
    } else {
        "f32"
    };
    assert_eq!(fast.precision(), want);
    assert_eq!(exact.precision(), "f32");
    let mut texts: Vec<String> = [
        "function parse config\ndef parse_config(path: str) -> dict\nRead the TOML file.",
        "class HttpResponseRedirect\nclass HttpResponseRedirect(HttpResponseRedirectBase)",
        "method tokio runtime builder enable all\npub fn enable_all(&mut self) -> &mut Self",
        "x",
        "",
    ]
    .map(String::from)
    .to_vec();
    texts.push(format!(
        "function long\ndef long()\n{}",
        "Return the words of the text, one per line, in the order given. ".repeat(20)
    ));
    let a = fast.embed_blocking(&texts).unwrap();
    let b = exact.embed_blocking(&texts).unwrap();
    for (i, (x, y)) in a.iter().zip(&b).enumerate() {
        let cos: f32 = x.iter().zip(y).map(|(p, q)| p * q).sum();
        assert!(cos >= 0.995, "text {i}: cosine {cos}");
    }
    if want == "int8" {
        let alone = fast.embed_blocking(&texts[2..3]).unwrap();
        assert_eq!(alone[0], a[2], "a vector changed with its neighbours");
    }

    // Workspaces of one server share one loaded model while any of them holds it.
    let local = EmbeddingSettings::Local {
        model_dir: Some(dir.clone()),
        batch_size: 32,
    };
    let cache = tempfile::tempdir().unwrap();
    let load = || async {
        match codeforge_index::load_embedder(&local, cache.path()).await {
            codeforge_index::EmbedderChoice::Ready(e) => e,
            _ => panic!("the model did not load"),
        }
    };
    let (one, two) = (load().await, load().await);
    assert!(
        std::ptr::addr_eq(std::sync::Arc::as_ptr(&one), std::sync::Arc::as_ptr(&two)),
        "loaded twice"
    );
}

#[tokio::test]
async fn the_name_layer_follows_every_write_and_never_waits_for_an_update() {
    let e = env("mixed");
    let i = open(&e, lexical_settings()).await;
    // While an update runs (its progress callback runs under the update lock), the layer does not
    // load and does not wait.
    let during = std::sync::Mutex::new(Vec::new());
    i.update(
        UpdateRequest::default(),
        &|_| {
            let r = futures::executor::block_on(i.try_load_names()).unwrap();
            during.lock().unwrap().push(r);
        },
        &CancelFlag::new(),
    )
    .await
    .unwrap();
    let during = during.into_inner().unwrap();
    assert!(
        !during.is_empty() && during.iter().all(|r| !r),
        "{during:?}"
    );
    assert!(!i.names_loaded());
    assert!(i.try_load_names().await.unwrap());
    let stored = i.store().count_symbols(None).await.unwrap();
    assert_eq!(i.with_names(|t| t.len()), Some(stored));

    // A new file, an edited one, a deleted one: the layer matches the store after each update.
    std::fs::write(
        e.root.join("added_here.py"),
        "def zzlayer_added():\n    return 1\n",
    )
    .unwrap();
    update(&i).await;
    assert_eq!(i.with_names(|t| t.is_defined("zzlayer_added")), Some(true));
    std::fs::write(
        e.root.join("added_here.py"),
        "def zzlayer_renamed():\n    return 2\n",
    )
    .unwrap();
    update(&i).await;
    assert_eq!(i.with_names(|t| t.is_defined("zzlayer_added")), Some(false));
    assert_eq!(
        i.with_names(|t| t.is_defined("zzlayer_renamed")),
        Some(true)
    );
    std::fs::remove_file(e.root.join("added_here.py")).unwrap();
    update(&i).await;
    assert_eq!(
        i.with_names(|t| t.is_defined("zzlayer_renamed")),
        Some(false)
    );
    let stored = i.store().count_symbols(None).await.unwrap();
    assert_eq!(i.with_names(|t| t.len()), Some(stored));
}

/// An embedder that holds the indexer's calls while `hold` is set (a slow model, made visible).
struct Gate {
    hold: std::sync::atomic::AtomicBool,
    calls: std::sync::atomic::AtomicUsize,
}

impl codeforge_index::Embedder for Gate {
    fn id(&self) -> &str {
        "gate-8"
    }
    fn dims(&self) -> usize {
        8
    }
    fn embed(
        &self,
        texts: Vec<String>,
    ) -> futures::future::BoxFuture<'_, anyhow::Result<Vec<Vec<f32>>>> {
        Box::pin(async move {
            // Symbols' texts have a signature line; a search's query has none and passes.
            let indexing = texts.iter().any(|t| t.contains('\n'));
            if indexing {
                self.calls.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
            }
            while indexing && self.hold.load(std::sync::atomic::Ordering::SeqCst) {
                tokio::time::sleep(std::time::Duration::from_millis(1)).await;
            }
            Ok(texts
                .iter()
                .map(|t| {
                    let mut v = vec![0f32; 8];
                    v[t.len() % 8] = 1.0;
                    v
                })
                .collect())
        })
    }
}

#[tokio::test]
async fn an_edit_is_searchable_before_its_vectors_are_written() {
    let e = env("mixed");
    let gate = std::sync::Arc::new(Gate {
        hold: false.into(),
        calls: 0.into(),
    });
    let i = WorkspaceIndex::open_with(
        &e.root,
        &e.cache,
        Settings::default(),
        codeforge_index::EmbedderChoice::Ready(gate.clone()),
    )
    .await
    .unwrap();
    update(&i).await;
    assert!(i.try_load_names().await.unwrap());
    let vectors = i.with_names(|t| t.vector_count()).unwrap();
    assert_eq!(Some(vectors), i.with_names(|t| t.len()));

    // An unsaved buffer adds a function; the model is held until the search has found it.
    gate.hold.store(true, std::sync::atomic::Ordering::SeqCst);
    let calls = gate.calls.load(std::sync::atomic::Ordering::SeqCst);
    let path = "app/mailer.py".to_string();
    let text = std::fs::read_to_string(e.root.join(&path)).unwrap();
    let cancel = CancelFlag::new();
    let edit = i.update(
        UpdateRequest {
            overlays: [(
                path.clone(),
                format!("{text}\n\ndef zzgated_edit():\n    return 1\n"),
            )]
            .into_iter()
            .collect(),
            only: Some(vec![path.clone()]),
            skip_embedding: false,
        },
        &|_| {},
        &cancel,
    );
    let find = async {
        for _ in 0..5000 {
            if names(&i, "zzgated_edit")
                .await
                .iter()
                .any(|n| n.ends_with("zzgated_edit"))
            {
                // Found while the model still holds the edit's vectors (an edit may first look
                // up the stored vectors it can reuse, so the model need not be reached yet):
                // the new function's vector is not in the store.
                assert!(i.store().count_vectors().await.unwrap() <= vectors);
                gate.hold.store(false, std::sync::atomic::Ordering::SeqCst);
                return true;
            }
            tokio::time::sleep(std::time::Duration::from_millis(2)).await;
        }
        gate.hold.store(false, std::sync::atomic::Ordering::SeqCst);
        false
    };
    let (summary, found) = tokio::join!(edit, find);
    let summary = summary.unwrap();
    assert!(
        found,
        "the edit was not searchable while its vectors were computed"
    );
    assert_eq!(summary.parsed, 1);
    assert!(summary.embedded >= 1, "{summary:?}");
    assert!(gate.calls.load(std::sync::atomic::Ordering::SeqCst) > calls);
    // Once written, the layer holds its vector too, and agrees with the store.
    assert_eq!(
        i.with_names(|t| (t.vector_count(), t.len())),
        Some((vectors + 1, vectors + 1))
    );
    assert_eq!(i.store().count_vectors().await.unwrap(), vectors + 1);
}
