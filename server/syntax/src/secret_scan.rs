//! Secret detection, the one place that decides what is secret: file names that are secret
//! material (`.env*`, `*.pem`, `credentials.*`, …), and content rules — private key blocks,
//! provider tokens (AWS, GitHub, GitLab, OpenAI, Anthropic, Google, Slack, Stripe, JWTs, …) and
//! `password = "…"`-style assignments of high-entropy literals. The indexer refuses a file with a
//! hit; prompts mask every hit with [`REDACTED`] before anything leaves the machine.
//!
//! The rules are data (`grammars/secret-rules.toml`, compiled in and checked by the tests
//! below). Pure: no I/O, never fails on any input; a hit is a byte range of the text given.

use std::borrow::Cow;
use std::sync::OnceLock;

use regex::Regex;
use serde::Deserialize;

/// What a masked secret reads as in a prompt (of no particular length).
pub const REDACTED: &str = "«redacted»";

/// The rules, as compiled into the binary.
pub const RULES_TOML: &str = include_str!("../grammars/secret-rules.toml");

/// One secret found in a text: which rule, and the byte range that is secret.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SecretHit {
    pub rule: &'static str,
    pub start: usize,
    pub end: usize,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RulesFile {
    names: NameRules,
    assignment: AssignmentSpec,
    rule: Vec<RuleSpec>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct NameRules {
    prefixes: Vec<String>,
    suffixes: Vec<String>,
    exact: Vec<String>,
    stems: Vec<String>,
    contains_with_suffix: Vec<(String, String)>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct AssignmentSpec {
    id: String,
    #[allow(dead_code)]
    description: String,
    keywords: Vec<String>,
    min_len: usize,
    min_entropy: f64,
    placeholders: Vec<String>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RuleSpec {
    id: String,
    #[allow(dead_code)]
    description: String,
    regex: String,
    #[serde(default)]
    random: bool,
}

struct TokenRule {
    id: String,
    regex: Regex,
    random: bool,
}

struct Assignment {
    spec: AssignmentSpec,
    regex: Regex,
}

struct Detector {
    names: NameRules,
    assignment: Assignment,
    rules: Vec<TokenRule>,
}

impl Detector {
    fn compile(toml_text: &str) -> Result<Detector, String> {
        let file: RulesFile =
            toml::from_str(toml_text).map_err(|e| format!("grammars/secret-rules.toml: {e}"))?;
        let mut rules = Vec::new();
        for r in file.rule {
            let regex = Regex::new(&r.regex).map_err(|e| format!("rule `{}`: {e}", r.id))?;
            rules.push(TokenRule {
                id: r.id,
                regex,
                random: r.random,
            });
        }
        let keywords: Vec<String> = file
            .assignment
            .keywords
            .iter()
            .map(|k| regex::escape(k))
            .collect();
        // name, optional closing quote/bracket, optional type annotation, operator, value.
        let pattern = String::new()
            + r"(?im)[A-Za-z0-9_.-]*(?:"
            + &keywords.join("|")
            + r#")[A-Za-z0-9_.-]*["'`]?\]?"#
            + r"(?:[ \t]*:[ \t]*[A-Za-z_&'<>\[\], ]{1,40}?)?"
            + r"[ \t]*(?::=|==|=>|=|:)[ \t]*"
            + r#"(?:[rRbBuU]{0,2}"(?P<dq>[^"\r\n]*)"|[rRbBuU]{0,2}'(?P<sq>[^'\r\n]*)'|`(?P<bq>[^`\r\n]*)`"#
            + r#"|(?P<bare>[A-Za-z0-9_+/=~!@%^*-]+)(?:$|[\s;,#)}\]"'`]))"#;
        let regex = Regex::new(&pattern).map_err(|e| format!("assignment rule: {e}"))?;
        Ok(Detector {
            names: file.names,
            assignment: Assignment {
                spec: file.assignment,
                regex,
            },
            rules,
        })
    }

    fn get() -> &'static Detector {
        static DETECTOR: OnceLock<Detector> = OnceLock::new();
        // The data is compiled in and checked by a unit test: a failure here is a build defect.
        DETECTOR.get_or_init(|| Detector::compile(RULES_TOML).unwrap_or_else(|e| panic!("{e}")))
    }

    /// Hits of every rule, in no particular order, overlapping possibly.
    fn hits(&'static self, text: &str, first_only: bool, out: &mut Vec<SecretHit>) {
        let min_entropy = self.assignment.spec.min_entropy;
        for rule in &self.rules {
            for caps in rule.regex.captures_iter(text) {
                let m = caps
                    .name("secret")
                    .or_else(|| caps.get(0))
                    .expect("group 0");
                if rule.random && !looks_random(m.as_str(), 0, min_entropy, &[]) {
                    continue;
                }
                out.push(SecretHit {
                    rule: &rule.id,
                    start: m.start(),
                    end: m.end(),
                });
                if first_only {
                    return;
                }
            }
        }
        let a = &self.assignment;
        for caps in a.regex.captures_iter(text) {
            let Some(v) = ["dq", "sq", "bq", "bare"].iter().find_map(|g| caps.name(g)) else {
                continue;
            };
            if looks_random(
                v.as_str(),
                a.spec.min_len,
                a.spec.min_entropy,
                &a.spec.placeholders,
            ) {
                out.push(SecretHit {
                    rule: &a.spec.id,
                    start: v.start(),
                    end: v.end(),
                });
                if first_only {
                    return;
                }
            }
        }
    }
}

/// Shannon entropy of `s` in bits per character.
pub fn shannon_entropy(s: &str) -> f64 {
    let mut counts = std::collections::HashMap::new();
    let mut n = 0usize;
    for c in s.chars() {
        *counts.entry(c).or_insert(0usize) += 1;
        n += 1;
    }
    if n == 0 {
        return 0.0;
    }
    counts
        .values()
        .map(|&k| {
            let p = k as f64 / n as f64;
            -p * p.log2()
        })
        .sum()
}

/// A word, a camelCase or PascalCase name, an acronym, maybe with a short number (`value1`,
/// `getHTTPResponse`, `userId`, `V2`), or a number: what code and prose are made of, unlike a key
/// (`aB3kLm9`, `xKqPzLmW`: random letters change case every one or two letters).
fn wordlike(segment: &str) -> bool {
    let b = segment.as_bytes();
    let letters = b.iter().take_while(|c| c.is_ascii_alphabetic()).count();
    if letters == 0 {
        return b.iter().all(u8::is_ascii_digit);
    }
    if b.len() - letters > 4 || !b[letters..].iter().all(u8::is_ascii_digit) {
        return false;
    }
    // Pieces start where a lower-case letter is followed by an upper-case one; each is an
    // upper-case run then a lower-case run. Inner pieces of real names have two or more
    // lower-case letters (`Response`, `HTTPServer`); the first and the last may be shorter.
    let l = &b[..letters];
    let mut starts = vec![0];
    starts.extend(
        (1..l.len()).filter(|&i| l[i - 1].is_ascii_lowercase() && l[i].is_ascii_uppercase()),
    );
    let n = starts.len();
    (1..n.saturating_sub(1)).all(|k| {
        let piece = &l[starts[k]..starts[k + 1]];
        piece.iter().filter(|c| c.is_ascii_lowercase()).count() >= 2
    })
}

/// Does this literal look like a key or password rather than code, words, a path or a
/// placeholder?
fn looks_random(value: &str, min_len: usize, min_entropy: f64, placeholders: &[String]) -> bool {
    let mut v = value.trim();
    for scheme in ["Bearer ", "Basic ", "token ", "bearer ", "basic "] {
        if let Some(rest) = v.strip_prefix(scheme) {
            v = rest.trim_start();
        }
    }
    if v.chars().count() < min_len || v.chars().any(char::is_whitespace) {
        return false;
    }
    let lower = v.to_ascii_lowercase();
    if placeholders.iter().any(|p| lower.contains(p.as_str()))
        || ["${", "{{", "#{"].iter().any(|p| v.contains(p))
        || v.starts_with(['$', '<', '{', '%'])
        || v.chars().all(|c| v.starts_with(c))
    {
        return false;
    }
    if v.split(|c: char| !c.is_ascii_alphanumeric())
        .filter(|s| !s.is_empty())
        .all(wordlike)
    {
        return false;
    }
    shannon_entropy(v) >= min_entropy
}

/// Is this file name (the last component of a path) secret material? Applies whatever the
/// ignore files say.
pub fn is_secret_name(file_name: &str) -> bool {
    let n = &Detector::get().names;
    let lower = file_name.to_ascii_lowercase();
    let stem = lower.split('.').next().unwrap_or(&lower);
    n.prefixes.iter().any(|p| lower.starts_with(p.as_str()))
        || n.suffixes.iter().any(|s| lower.ends_with(s.as_str()))
        || n.exact.contains(&lower)
        || n.stems.iter().any(|s| stem == s)
        || n.contains_with_suffix
            .iter()
            .any(|(c, s)| lower.contains(c.as_str()) && lower.ends_with(s.as_str()))
}

/// [`is_secret_name`] of a path's last component (`/` or `\` separated).
pub fn is_secret_path(path: &str) -> bool {
    is_secret_name(path.rsplit(['/', '\\']).next().unwrap_or(path))
}

/// Does this text hold a secret?
pub fn has_secret(text: &str) -> bool {
    let mut out = Vec::new();
    Detector::get().hits(text, true, &mut out);
    !out.is_empty()
}

/// Every secret in `text`, in order, overlapping hits merged (the first rule's name kept).
pub fn find_secrets(text: &str) -> Vec<SecretHit> {
    let mut hits = Vec::new();
    Detector::get().hits(text, false, &mut hits);
    hits.sort_by_key(|h| (h.start, std::cmp::Reverse(h.end)));
    let mut merged: Vec<SecretHit> = Vec::new();
    for h in hits {
        match merged.last_mut() {
            Some(last) if h.start < last.end => last.end = last.end.max(h.end),
            _ => merged.push(h),
        }
    }
    merged
}

fn mask(text: &str, hits: &[SecretHit], from: usize, to: usize) -> String {
    let mut out = String::with_capacity(to - from);
    let mut at = from;
    for h in hits {
        let (s, e) = (h.start.max(from), h.end.min(to));
        if s >= e || s < at {
            continue;
        }
        out.push_str(&text[at..s]);
        out.push_str(REDACTED);
        at = e;
    }
    out.push_str(&text[at..to]);
    out
}

/// `text` with every secret replaced by [`REDACTED`] (borrowed when there is none).
pub fn redact(text: &str) -> Cow<'_, str> {
    let hits = find_secrets(text);
    if hits.is_empty() {
        Cow::Borrowed(text)
    } else {
        Cow::Owned(mask(text, &hits, 0, text.len()))
    }
}

/// The text before and after byte `offset`, each with its secrets masked; a secret the offset
/// falls in is found whole and masked once, at the end of the first part.
pub fn redact_split(text: &str, offset: usize) -> (String, String) {
    let mut offset = offset.min(text.len());
    while !text.is_char_boundary(offset) {
        offset -= 1;
    }
    let hits = find_secrets(text);
    let prefix = mask(text, &hits, 0, offset);
    // A hit straddling the offset was masked in the prefix: its rest goes.
    let suffix_from = hits
        .iter()
        .find(|h| h.start < offset && h.end > offset)
        .map_or(offset, |h| h.end);
    let suffix = mask(text, &hits, suffix_from, text.len());
    (prefix, suffix)
}

/// The ids of the content rules, in the order of the data file (the assignment rule last).
pub fn rule_ids() -> Vec<&'static str> {
    let d = Detector::get();
    d.rules
        .iter()
        .map(|r| r.id.as_str())
        .chain([d.assignment.spec.id.as_str()])
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Deterministic random-looking text of `len` characters from `alphabet` (tokens are built
    /// here, so this file does not itself look like a leaked secret).
    fn noise(len: usize, seed: u64, alphabet: &str) -> String {
        let a: Vec<char> = alphabet.chars().collect();
        let mut x = seed
            .wrapping_mul(6364136223846793005)
            .wrapping_add(1442695040888963407);
        (0..len)
            .map(|_| {
                x = x
                    .wrapping_mul(6364136223846793005)
                    .wrapping_add(1442695040888963407);
                a[((x >> 33) % a.len() as u64) as usize]
            })
            .collect()
    }

    const ALNUM: &str = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789";
    const URLSAFE: &str = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789_-";
    const BASE64: &str = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";

    fn alnum(len: usize) -> String {
        noise(len, len as u64, ALNUM)
    }

    /// The rules that found something in `text`.
    fn rules_in(text: &str) -> Vec<&'static str> {
        let mut out = Vec::new();
        Detector::get().hits(text, false, &mut out);
        let mut ids: Vec<_> = out.into_iter().map(|h| h.rule).collect();
        ids.dedup();
        ids
    }

    /// `rule` finds a secret in every positive, masked away by [`redact`]; nothing is found in
    /// any negative.
    fn check(rule: &str, positives: &[String], negatives: &[&str]) {
        assert!(rule_ids().contains(&rule), "no rule `{rule}` in the data");
        for p in positives {
            assert!(rules_in(p).contains(&rule), "`{rule}` missed:\n{p}");
            let masked = redact(p);
            assert!(masked.contains(REDACTED), "{masked}");
            assert!(!has_secret(&masked), "still secret after masking: {masked}");
        }
        for n in negatives {
            assert!(
                rules_in(n).is_empty(),
                "false positive {:?} in:\n{n}",
                rules_in(n)
            );
        }
    }

    /// Every content rule of the data file has a test below.
    #[test]
    fn every_rule_is_tested_and_the_data_compiles() {
        let tested = [
            "private-key",
            "aws-access-key-id",
            "github-token",
            "github-fine-grained-token",
            "gitlab-token",
            "anthropic-key",
            "openai-key",
            "google-api-key",
            "google-oauth-secret",
            "slack-token",
            "slack-webhook",
            "stripe-live-key",
            "jwt",
            "npm-token",
            "pypi-token",
            "huggingface-token",
            "sendgrid-key",
            "generic-assignment",
        ];
        let ids = rule_ids();
        for id in &ids {
            assert!(tested.contains(id), "rule `{id}` has no test");
        }
        let mut unique = ids.clone();
        unique.sort();
        unique.dedup();
        assert_eq!(unique.len(), ids.len(), "duplicate rule ids");
        // What is compiled in is what is on disk.
        let path = std::path::PathBuf::from(env!("CARGO_MANIFEST_DIR"))
            .join("../../grammars/secret-rules.toml");
        assert_eq!(std::fs::read_to_string(path).unwrap(), RULES_TOML);
    }

    #[test]
    fn private_key_blocks() {
        let body: String = (0..6)
            .map(|i| format!("{}\n", noise(64, i, BASE64)))
            .collect();
        let pem = |kind: &str| format!("-----BEGIN {kind}-----\n{body}-----END {kind}-----\n");
        let positives = vec![
            format!("KEY = '''{}'''", pem("RSA PRIVATE KEY")),
            pem("PRIVATE KEY"),
            pem("EC PRIVATE KEY"),
            pem("ENCRYPTED PRIVATE KEY"),
            pem("OPENSSH PRIVATE KEY"),
            format!(
                "-----BEGIN PGP PRIVATE KEY BLOCK-----\nVersion: GnuPG v2\n\n{body}=a1B2\n-----END PGP PRIVATE KEY BLOCK-----"
            ),
            // In a string with escaped newlines, and with its END line cut off.
            format!(
                "String k = \"-----BEGIN RSA PRIVATE KEY-----\\n{}\\n\";",
                noise(64, 9, BASE64)
            ),
        ];
        check(
            "private-key",
            &positives,
            &[
                "-----BEGIN CERTIFICATE REQUEST-----",
                "if line.startswith(\"-----BEGIN RSA PRIVATE KEY-----\"):\n    return parse(line)\n",
                "-----BEGIN PUBLIC KEY-----\nMIIBIjANBgkqhkiG9w0BAQEFAAOCAQ8AMIIBCgKCAQEAu1SU1LfVLPHCozMxH2Mo\n-----END PUBLIC KEY-----",
            ],
        );
        // The whole block goes, END line included.
        let masked = redact(&positives[0]);
        assert_eq!(masked, format!("KEY = '''{REDACTED}\n'''"));
    }

    #[test]
    fn aws_access_key_ids() {
        check(
            "aws-access-key-id",
            &[
                format!("KEY = '{}{}'", "AKIA", "IOSFODNN7EXAMPLE"),
                format!("aws_access_key_id={}{}", "ASIA", "Y34FZKBOKMUTVV7A"),
            ],
            &["AKIA_PREFIX = 1\ndef f(): pass", "AKIAISMYNAMEANDMORE01234"],
        );
    }

    #[test]
    fn github_tokens() {
        let positives: Vec<String> = ["ghp", "gho", "ghu", "ghs", "ghr"]
            .iter()
            .map(|p| format!("token: {p}_{}", alnum(36)))
            .collect();
        check(
            "github-token",
            &positives,
            &["ghp_ = 1", "let ghp_count = ghs_total + 1;"],
        );
    }

    #[test]
    fn github_fine_grained_tokens() {
        check(
            "github-fine-grained-token",
            &[format!(
                "GH = \"github_pat_{}_{}\"",
                alnum(22),
                noise(59, 3, ALNUM)
            )],
            &["use github_pat_helper;"],
        );
    }

    #[test]
    fn gitlab_tokens() {
        check(
            "gitlab-token",
            &[format!("CI_TOKEN={}{}", "glpat-", noise(20, 4, URLSAFE))],
            &["glpat-short", "docs mention the glpat- prefix"],
        );
    }

    #[test]
    fn anthropic_keys() {
        check(
            "anthropic-key",
            &[format!(
                "client = Anthropic(api_key=\"sk-ant-api03-{}AA\")",
                noise(93, 5, URLSAFE)
            )],
            &["sk-ant-this-is-where-your-key-goes-later-on-ok"],
        );
    }

    #[test]
    fn openai_keys() {
        check(
            "openai-key",
            &[
                format!("openai.api_key = 'sk-{}'", alnum(48)),
                format!("OPENAI_API_KEY=sk-proj-{}", noise(120, 6, URLSAFE)),
            ],
            &[
                "pip install sk-learn-model-selection-helpers",
                "class=\"task-list-item-checkbox-container\"",
            ],
        );
    }

    #[test]
    fn google_api_keys() {
        check(
            "google-api-key",
            &[format!(
                "const MAPS = \"{}{}\";",
                "AIza",
                noise(35, 7, URLSAFE)
            )],
            &["AIzaShortOne", "maybeAIza"],
        );
        // Only the key is masked, not the quote after it.
        let line = format!("k = '{}{}'", "AIza", noise(35, 7, URLSAFE));
        assert_eq!(redact(&line), format!("k = '{REDACTED}'"));
    }

    #[test]
    fn google_oauth_secrets() {
        check(
            "google-oauth-secret",
            &[format!(
                "\"client_secret\": \"GOCSPX-{}\"",
                noise(28, 8, URLSAFE)
            )],
            &["GOCSPX-"],
        );
    }

    #[test]
    fn slack_tokens() {
        check(
            "slack-token",
            &[
                format!(
                    "SLACK_BOT_TOKEN=xoxb-{}-{}-{}",
                    "2345678901",
                    "3456789012345",
                    alnum(24)
                ),
                format!("token = 'xoxp-{}-{}'", "2345678901", noise(32, 10, ALNUM)),
                format!(
                    "xapp-1-A{}-{}-{}",
                    "0123ABCD",
                    "2345678901",
                    noise(64, 11, "0123456789abcdef")
                ),
            ],
            &["SLACK_BOT_TOKEN=xoxb-your-bot-token-here", "xoxb-"],
        );
    }

    #[test]
    fn slack_webhooks() {
        check(
            "slack-webhook",
            &[format!(
                "WEBHOOK = \"https://hooks.slack.com/services/T{}/B{}/{}\"",
                noise(8, 12, "ABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789"),
                noise(8, 13, "ABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789"),
                alnum(24)
            )],
            &["see https://hooks.slack.com/services/ for the setup"],
        );
    }

    #[test]
    fn stripe_live_keys() {
        check(
            "stripe-live-key",
            &[
                format!("stripe.api_key = \"{}_live_{}\"", "sk", alnum(24)),
                format!("RESTRICTED={}_live_{}", "rk", noise(99, 14, ALNUM)),
            ],
            &["if key.startswith(\"sk_live_\"):"],
        );
    }

    #[test]
    fn jwts() {
        let seg = |n, s| noise(n, s, URLSAFE);
        check(
            "jwt",
            &[format!(
                "headers = {{\"Authorization\": \"Bearer eyJ{}.eyJ{}.{}\"}}",
                seg(33, 15),
                seg(60, 16),
                seg(43, 17)
            )],
            &[
                "b = \"eyJ\"  # every JSON object starts so in base64",
                "eyJhbGciOi.eyJ",
            ],
        );
    }

    #[test]
    fn npm_tokens() {
        check(
            "npm-token",
            &[format!(
                "//registry.npmjs.org/:_authToken=npm_{}",
                alnum(36)
            )],
            &["npm_config_cache = 1"],
        );
    }

    #[test]
    fn pypi_tokens() {
        check(
            "pypi-token",
            &[format!(
                "password = {}{}",
                "pypi-AgEIcHlwaS5vcmc",
                noise(70, 18, URLSAFE)
            )],
            &["username = __token__\npassword = pypi-"],
        );
    }

    #[test]
    fn huggingface_tokens() {
        check(
            "huggingface-token",
            &[format!(
                "login(\"hf_{}\")",
                noise(
                    34,
                    19,
                    "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz"
                )
            )],
            &["hf_hub_download_with_progressbar", "hf_ = load()"],
        );
    }

    #[test]
    fn sendgrid_keys() {
        check(
            "sendgrid-key",
            &[format!(
                "SENDGRID_API_KEY='SG.{}.{}'",
                noise(22, 20, URLSAFE),
                noise(43, 21, URLSAFE)
            )],
            &["msg = SG.compose(a.b)"],
        );
    }

    #[test]
    fn high_entropy_assignments() {
        let key = alnum(32);
        let positives = vec![
            format!("API_KEY = \"{key}\""),
            format!(
                "password='{}'",
                noise(16, 22, &(ALNUM.to_string() + "!@#%^&*"))
            ),
            format!(
                "SECRET_KEY = 'django-insecure-{}'",
                noise(50, 23, "abcdefghijklmnopqrstuvwxyz0123456789!@#%^&*(-_=+)")
            ),
            format!("db_passwd: {}", alnum(20)),
            format!("export AUTH_TOKEN={}", noise(40, 24, "0123456789abcdef")),
            format!("const API_KEY: &str = \"{key}\";"),
            format!("private static final String apiKey = \"{key}\";"),
            format!("api_key: str = \"{key}\""),
            format!("{{\"client_secret\": \"{key}\"}}"),
            format!("connect(host, password=\"{key}\")"),
            format!("if token == \"{key}\":"),
        ];
        check(
            "generic-assignment",
            &positives,
            &[
                "password = input()",
                "password = getpass.getpass('Password: ')",
                "token = self.next_token()",
                "let token = lexer.next_token();",
                "String token = request.getHeader(\"Authorization\");",
                "secret_key = os.environ[\"X\"]",
                "SECRET_KEY = os.environ.get('DJANGO_SECRET_KEY')",
                "password = \"\"",
                "api_key = \"changeme\"",
                "api_key = \"changeme-please-1234\"",
                "API_KEY = \"<your-key>\"",
                "API_KEY = \"<your-api-key-goes-here>\"",
                "token = \"xxxxxxxxxxxxxxxxxxxxxxxx\"",
                "SECRET_KEY = \"${SECRET_KEY}\"",
                "password: {{ vault_password }}",
                "password = $DB_PASSWORD",
                "max_tokens = 384",
                "api_key_env = \"DASHSCOPE_API_KEY\"",
                "password_field = \"user_password_input\"",
                "token_type = \"access_token_value1\"",
                "auth_token_url = \"https://auth.example.com/oauth2/token\"",
                "private_key_path = \"keys/id_rsa_2048.pem\"",
                "secret = settings.SECRET_KEY",
                "SECRET_KEY = get_random_secret_key()",
                "logger.info(\"token: %s\", tok)",
                "print(f\"password={pw}\")",
                "secretary = \"Margaret Hamilton\"",
                "tokens = tokenize(source_text_with_many_chars)",
                "password = hashed_password_2024",
                "API_KEY = \"«redacted»\"",
            ],
        );
        // Only the value is masked.
        assert_eq!(redact(&positives[0]), format!("API_KEY = \"{REDACTED}\""));
    }

    #[test]
    fn entropy_and_words() {
        assert_eq!(shannon_entropy(""), 0.0);
        assert_eq!(shannon_entropy("aaaa"), 0.0);
        assert!((shannon_entropy("abcd") - 2.0).abs() < 1e-9);
        assert!(wordlike("getHTTPResponse") && wordlike("value1") && wordlike("2024"));
        assert!(wordlike("userId") && wordlike("HTTPServer") && wordlike("parseURL"));
        assert!(!wordlike("aB3kLm9") && !wordlike("aBcDeFgHiJkLmNoP") && !wordlike("xKqPzLmW"));
    }

    #[test]
    fn masking_around_an_offset_finds_a_secret_whole() {
        let key = alnum(32);
        let text = format!("x = 1\nAPI_KEY = \"{key}\"\ny = 2\n");
        let inside = text.find(&key).unwrap() + 10;
        let (pre, suf) = redact_split(&text, inside);
        assert_eq!(pre, format!("x = 1\nAPI_KEY = \"{REDACTED}"));
        assert_eq!(suf, "\"\ny = 2\n");
        let (pre, suf) = redact_split(&text, 3);
        assert_eq!(
            (pre.as_str(), suf),
            ("x =", format!(" 1\nAPI_KEY = \"{REDACTED}\"\ny = 2\n"))
        );
        assert!(matches!(redact("def f(): pass"), Cow::Borrowed(_)));
    }

    #[test]
    fn secret_names() {
        for n in [
            ".env",
            ".env.local",
            "server.pem",
            "x.pem",
            "tls.key",
            "id_rsa",
            "id_ed25519.pub",
            "credentials.py",
            "secrets.rs",
            ".netrc",
            "gcp-service-account.json",
        ] {
            assert!(is_secret_name(n), "{n}");
        }
        for n in [
            "config.py",
            "keys.rs",
            "Key.java",
            "environment.py",
            "monkey.py",
            "secret_scan.rs",
            "secret-rules.toml",
        ] {
            assert!(!is_secret_name(n), "{n}");
        }
        assert!(is_secret_path("app/config/.env.production"));
        assert!(is_secret_path("C:\\work\\deploy\\credentials.json"));
        assert!(!is_secret_path(".env/app.py"));
    }
}
