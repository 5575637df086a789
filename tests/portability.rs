//! The binary on other CPUs than the one it was built on. Under `qemu-x86_64 -cpu Haswell` (AVX2
//! and FMA, no AVX-512: most laptops) it answers `--version`, extracts symbols in the three
//! languages, indexes and searches a small workspace with the real MiniLM model and continues a
//! prompt with the real embedded Qwen model, each with the native run's output (emulation is
//! slow: the inputs are small). On a CPU below the build's x86-64-v3 baseline
//! (`-cpu Nehalem`: SSE4.2, no AVX) it says what the CPU lacks and exits 1 instead of dying of an
//! illegal instruction. Needs `qemu-user` (`bash .ci/test` installs it); fails, never skips,
//! without it.
#![cfg(target_os = "linux")]
#![cfg(target_arch = "x86_64")]

use std::path::Path;
use std::process::Command;

use serde_json::Value;

use codeforge_testkit::{TempWorkspace, fixtures, real_qwen_gguf, workspace_with_real_embeddings};

const BIN: &str = env!("CARGO_BIN_EXE_codeforge");
const JAVA: &str = "symbols/java/src/main/java/com/acme/Util.java";
const RUST: &str = "symbols/rust/src/lib.rs";

/// How one run ended: exit status (-1 for a signal, with the signal in `stderr`), stdout, stderr.
struct Out {
    code: i32,
    stdout: String,
    stderr: String,
}

/// Runs the binary natively (`cpu: None`) or under qemu on the named CPU model, with `cache` as
/// its cache dir and `<cache>/../config` as the user's config dir.
fn run(cpu: Option<&str>, args: &[&str], cache: &Path) -> Out {
    run_with(cpu, args, cache, &[])
}

/// [`run`] with more environment variables.
fn run_with(cpu: Option<&str>, args: &[&str], cache: &Path, env: &[(&str, &str)]) -> Out {
    let mut cmd = match cpu {
        None => Command::new(BIN),
        Some(model) => {
            let mut c = Command::new("qemu-x86_64");
            c.args(["-cpu", model, BIN]);
            c
        }
    };
    let out = cmd
        .args(args)
        .env("CODEFORGE_CACHE_DIR", cache)
        .env("XDG_CONFIG_HOME", cache.parent().unwrap().join("config"))
        .envs(env.iter().copied())
        .output()
        .unwrap_or_else(|e| {
            panic!("cannot start {cmd:?}: {e} (qemu-x86_64 comes with Debian's qemu-user)")
        });
    use std::os::unix::process::ExitStatusExt;
    let mut stderr = String::from_utf8_lossy(&out.stderr).into_owned();
    if let Some(sig) = out.status.signal() {
        stderr.push_str(&format!("\n[killed by signal {sig}]"));
    }
    Out {
        code: out.status.code().unwrap_or(-1),
        stdout: String::from_utf8_lossy(&out.stdout).into_owned(),
        stderr,
    }
}

fn ok(o: Out, what: &str) -> String {
    assert_eq!(o.code, 0, "{what}: {}", o.stderr);
    o.stdout
}

/// Index then search one workspace with the real MiniLM model, on this CPU or an emulated one,
/// each with its own cache: the summary (without its timing and cache path) and the hits.
fn index_and_search(cpu: Option<&str>, ws: &TempWorkspace, cache: &Path) -> (Value, Value) {
    let root = ws.root.to_str().unwrap();
    let summary = ok(run(cpu, &["index", "--json", root], cache), "index");
    let mut summary: Value = serde_json::from_str(summary.trim()).unwrap();
    for volatile in ["elapsed_ms", "index_dir"] {
        summary.as_object_mut().unwrap().remove(volatile);
    }
    let out = ok(
        run(
            cpu,
            &[
                "search",
                "--json",
                "-w",
                root,
                "-k",
                "3",
                "parse the config file",
            ],
            cache,
        ),
        "search",
    );
    let r: Value = serde_json::from_str(out.trim()).unwrap();
    (summary, r)
}

#[test]
fn on_a_haswell_cpu_it_answers_as_natively() {
    const CPU: Option<&str> = Some("Haswell");
    let nowhere = Path::new("/nonexistent/cache");

    let native = ok(run(None, &["--version"], nowhere), "--version");
    assert!(native.starts_with("codeforge "), "{native}");
    assert_eq!(
        ok(run(CPU, &["--version"], nowhere), "--version (Haswell)"),
        native
    );

    for file in ["symbols/python/src/shop/cart.py", JAVA, RUST] {
        let file = fixtures(file);
        let args = ["symbols", "--json", file.to_str().unwrap()];
        let native = ok(run(None, &args, nowhere), "symbols");
        assert!(native.contains("\"symbols\""), "{native}");
        assert_eq!(ok(run(CPU, &args, nowhere), "symbols (Haswell)"), native);
    }

    // Three documented functions: few, because every vector costs about ten seconds under
    // emulation (TCG runs AVX2 code instruction by instruction).
    let ws = workspace_with_real_embeddings("tiny_docs");
    let native_cache = ws.cache.with_file_name("cache-native");
    let (native_summary, native_hits) = index_and_search(None, &ws, &native_cache);
    assert_eq!(native_summary["embedded"], 3, "{native_summary}");
    assert_eq!(native_hits["lexical_only"], false, "{native_hits}");
    assert_eq!(
        native_hits["hits"][0]["name"], "read_options",
        "{native_hits}"
    );
    let (summary, hits) = index_and_search(CPU, &ws, &ws.cache.with_file_name("cache-haswell"));
    assert_eq!(summary, native_summary);
    assert_eq!(hits, native_hits);

    // The embedded model: loaded (and requantized once, natively) from the real cache.
    real_qwen_gguf();
    let cache =
        &codeforge_config::cache_dir(None, std::env::var_os(codeforge_config::CACHE_DIR_ENV));
    // A prompt whose greedy tokens each lead the next-best by several logits: the AVX-512 VNNI
    // kernels and candle's AVX2 ones quantize activations with different rounding, so their
    // logits differ by up to ~0.2 here, and a near-tie (after `def fib(n):` the first token's
    // top two are 0.02–0.04 apart) may fall either way on either path.
    let prompt = "def add(a, b):\n    \"\"\"Return the sum of a and b.\"\"\"\n    return";
    let args = ["model", "run", "--json", "--max-tokens", "3", prompt];
    let answers = |out: &str| {
        let v: Value = serde_json::from_str(out.trim()).unwrap();
        assert_eq!(v["completion_tokens"], 3, "{v}");
        assert_eq!(v["text"], " a + b", "{v}");
    };
    for quant in ["q4_0", "q8_0"] {
        let env = [("CODEFORGE_EMBEDDED_QUANT", quant)];
        let native = ok(run_with(None, &args, cache, &env), "model run");
        answers(&native);
        let haswell = ok(run_with(CPU, &args, cache, &env), "model run (Haswell)");
        assert_eq!(haswell, native, "{quant}");
    }
}

#[test]
fn below_the_baseline_it_says_what_the_cpu_lacks() {
    let o = run(
        Some("Nehalem"),
        &["--version"],
        Path::new("/nonexistent/cache"),
    );
    assert_eq!(o.code, 1, "{}", o.stderr);
    assert!(o.stdout.is_empty(), "{}", o.stdout);
    assert!(
        o.stderr.contains("this CPU lacks") && o.stderr.contains("AVX2"),
        "{}",
        o.stderr
    );
    assert!(o.stderr.contains("x86-64-v3"), "{}", o.stderr);
}
