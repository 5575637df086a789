//! Structured test results from runner output: JUnit XML (pytest `--junitxml`, Maven Surefire
//! reports) and libtest's text (`cargo test`). Pure functions over text; no process or file I/O.

use serde::Serialize;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Verdict {
    Passed,
    Failed,
    Error,
    Skipped,
}

/// One test's result.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct TestResult {
    /// `Class.test` / `module::test` / `path::Class::test`, as the runner names it.
    pub name: String,
    pub verdict: Verdict,
    /// Assertion message and traceback (cut), for failures.
    pub message: String,
}

fn unescape(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    let mut rest = s;
    while let Some(i) = rest.find('&') {
        out.push_str(&rest[..i]);
        let tail = &rest[i..];
        let Some(end) = tail.find(';').filter(|e| *e <= 10) else {
            out.push('&');
            rest = &tail[1..];
            continue;
        };
        let ent = &tail[1..end];
        let ch = match ent {
            "lt" => Some('<'),
            "gt" => Some('>'),
            "amp" => Some('&'),
            "quot" => Some('"'),
            "apos" => Some('\''),
            _ if ent.starts_with("#x") => u32::from_str_radix(&ent[2..], 16)
                .ok()
                .and_then(char::from_u32),
            _ if ent.starts_with('#') => ent[1..].parse().ok().and_then(char::from_u32),
            _ => None,
        };
        match ch {
            Some(c) => out.push(c),
            None => out.push_str(&tail[..=end]),
        }
        rest = &tail[end + 1..];
    }
    out.push_str(rest);
    out
}

fn attr(tag: &str, name: &str) -> Option<String> {
    let pat = format!(" {name}=\"");
    let i = tag.find(&pat)? + pat.len();
    let end = tag[i..].find('"')? + i;
    Some(unescape(&tag[i..end]))
}

fn strip_cdata(s: &str) -> String {
    let s = s.trim();
    let s = s
        .strip_prefix("<![CDATA[")
        .and_then(|x| x.strip_suffix("]]>"))
        .map(str::to_string);
    s.unwrap_or_default()
}

/// Cuts a message to about `max` bytes, keeping its start and end.
pub fn clip(text: &str, max: usize) -> String {
    if text.len() <= max {
        return text.to_string();
    }
    let mut a = max * 2 / 3;
    while !text.is_char_boundary(a) {
        a -= 1;
    }
    let mut b = text.len() - (max - a);
    while !text.is_char_boundary(b) {
        b += 1;
    }
    format!("{}\n… ({} bytes cut) …\n{}", &text[..a], b - a, &text[b..])
}

/// Parses the `<testcase>` elements of a JUnit XML document (one report or several concatenated).
pub fn parse_junit(xml: &str) -> Vec<TestResult> {
    let mut out = Vec::new();
    let mut rest = xml;
    while let Some(i) = rest.find("<testcase") {
        rest = &rest[i..];
        let Some(tag_end) = rest.find('>') else { break };
        let tag = &rest[..tag_end];
        let self_closing = tag.ends_with('/');
        let classname = attr(tag, "classname").unwrap_or_default();
        let name = attr(tag, "name").unwrap_or_default();
        let full = if classname.is_empty() {
            name
        } else {
            format!("{classname}.{name}")
        };
        let (body, next) = if self_closing {
            ("", &rest[tag_end + 1..])
        } else {
            match rest.find("</testcase>") {
                Some(e) => (&rest[tag_end + 1..e], &rest[e + "</testcase>".len()..]),
                None => (&rest[tag_end + 1..], ""),
            }
        };
        let mut verdict = Verdict::Passed;
        let mut message = String::new();
        for (el, v) in [
            ("failure", Verdict::Failed),
            ("error", Verdict::Error),
            ("skipped", Verdict::Skipped),
        ] {
            let open = format!("<{el}");
            if let Some(j) = body.find(&open) {
                verdict = v;
                let t = &body[j..];
                let te = t.find('>').unwrap_or(t.len());
                let etag = &t[..te];
                let msg = attr(etag, "message").unwrap_or_default();
                let close = format!("</{el}>");
                let text = if etag.ends_with('/') {
                    String::new()
                } else {
                    let inner = &t[(te + 1).min(t.len())..t.find(&close).unwrap_or(t.len())];
                    let c = strip_cdata(inner);
                    if c.is_empty() { unescape(inner) } else { c }
                };
                message = if text.contains(msg.trim()) || msg.is_empty() {
                    text
                } else {
                    format!("{msg}\n{text}")
                };
                break;
            }
        }
        out.push(TestResult {
            name: full,
            verdict,
            message: clip(message.trim(), 4000),
        });
        rest = next;
    }
    out
}

/// Parses libtest's text output (`test name ... ok|FAILED|ignored`, then `---- name stdout ----`
/// sections), as `cargo test` prints it for unit, integration and doc tests.
pub fn parse_libtest(output: &str) -> Vec<TestResult> {
    let mut out: Vec<TestResult> = Vec::new();
    for line in output.lines() {
        let Some(rest) = line.strip_prefix("test ") else {
            continue;
        };
        let Some((name, status)) = rest.rsplit_once(" ... ") else {
            continue;
        };
        let verdict = match status.trim() {
            "ok" => Verdict::Passed,
            "FAILED" => Verdict::Failed,
            s if s.starts_with("ignored") => Verdict::Skipped,
            _ => continue,
        };
        out.push(TestResult {
            name: name.trim().to_string(),
            verdict,
            message: String::new(),
        });
    }
    // Failure details.
    let mut current: Option<String> = None;
    let mut buf = String::new();
    let flush = |cur: &Option<String>, buf: &str, out: &mut Vec<TestResult>| {
        if let Some(n) = cur
            && let Some(t) = out.iter_mut().find(|t| &t.name == n)
        {
            t.message = clip(buf.trim(), 4000);
        }
    };
    for line in output.lines() {
        if let Some(n) = line
            .strip_prefix("---- ")
            .and_then(|l| l.strip_suffix(" stdout ----"))
        {
            flush(&current, &buf, &mut out);
            current = Some(n.to_string());
            buf.clear();
        } else if current.is_some() && (line == "failures:" || line.starts_with("test result:")) {
            flush(&current, &buf, &mut out);
            current = None;
            buf.clear();
        } else if current.is_some() {
            buf.push_str(line);
            buf.push('\n');
        }
    }
    flush(&current, &buf, &mut out);
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pytest_junit() {
        let xml = r#"<?xml version="1.0" encoding="utf-8"?><testsuites><testsuite name="pytest" errors="0" failures="1" skipped="0" tests="3"><testcase classname="tests.test_cart" name="test_add" time="0.001" /><testcase classname="tests.test_cart.TestCart" name="test_total" time="0.001"><failure message="assert 3 == 4&#10; +  where 3 = total()">def test_total():
&gt;       assert total() == 4
E       assert 3 == 4</failure></testcase><testcase classname="tests.test_cart" name="test_skip" time="0"><skipped type="pytest.skip" message="later">skip</skipped></testcase></testsuite></testsuites>"#;
        let r = parse_junit(xml);
        assert_eq!(r.len(), 3);
        assert_eq!(
            r[0],
            TestResult {
                name: "tests.test_cart.test_add".into(),
                verdict: Verdict::Passed,
                message: String::new()
            }
        );
        assert_eq!(r[1].verdict, Verdict::Failed);
        assert_eq!(r[1].name, "tests.test_cart.TestCart.test_total");
        assert!(
            r[1].message.contains("assert 3 == 4")
                && r[1].message.contains(">       assert total() == 4"),
            "{}",
            r[1].message
        );
        assert_eq!(r[2].verdict, Verdict::Skipped);
    }

    #[test]
    fn surefire_junit_with_cdata() {
        let xml = r#"<testsuite name="com.acme.UtilTest"><testcase name="reverses" classname="com.acme.UtilTest" time="0.01"><failure message="expected:&lt;cba&gt; but was:&lt;abc&gt;" type="org.junit.ComparisonFailure"><![CDATA[org.junit.ComparisonFailure: expected:<cba> but was:<abc>
	at com.acme.UtilTest.reverses(UtilTest.java:9)]]></failure></testcase><testcase name="empty" classname="com.acme.UtilTest" time="0"/></testsuite>"#;
        let r = parse_junit(xml);
        assert_eq!(r.len(), 2);
        assert_eq!(r[0].name, "com.acme.UtilTest.reverses");
        assert_eq!(r[0].verdict, Verdict::Failed);
        assert!(r[0].message.contains("expected:<cba> but was:<abc>"));
        assert!(r[0].message.contains("UtilTest.java:9"));
        assert_eq!(r[1].verdict, Verdict::Passed);
    }

    #[test]
    fn libtest_text() {
        let out = "running 3 tests\ntest tests::adds ... ok\ntest tests::subs ... FAILED\ntest tests::later ... ignored, not yet\n\nfailures:\n\n---- tests::subs stdout ----\n\nthread 'tests::subs' panicked at src/lib.rs:9:9:\nassertion `left == right` failed\n  left: 1\n right: 2\n\n\nfailures:\n    tests::subs\n\ntest result: FAILED. 1 passed; 1 failed; 1 ignored\n\nrunning 1 test\ntest src/lib.rs - add (line 3) ... ok\n";
        let r = parse_libtest(out);
        assert_eq!(r.len(), 4);
        assert_eq!(r[0].verdict, Verdict::Passed);
        assert_eq!(r[1].verdict, Verdict::Failed);
        assert!(r[1].message.contains("left: 1"), "{}", r[1].message);
        assert!(!r[1].message.contains("failures:"));
        assert_eq!(r[2].verdict, Verdict::Skipped);
        assert_eq!(r[3].name, "src/lib.rs - add (line 3)");
    }

    #[test]
    fn clip_keeps_both_ends_on_char_boundaries() {
        let s = "é".repeat(1000);
        let c = clip(&s, 100);
        assert!(c.len() < 200 && c.starts_with('é') && c.ends_with('é'));
    }
}
