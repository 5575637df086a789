//! Maven with Surefire (Java): tests are named `Class#method` and filtered with one `-Dtest=`
//! (`Cls#m1+m2,Cls2`); `{settings}` is the offline settings file; model-written tests become a
//! JUnit 4 class `CodeforgeGeneratedTest` in the target's package under `src/test/java`.

use super::{
    ExpandCtx, GeneratedTests, Runner, base_name, generated_selection, generated_test_names,
};
use crate::report::TestResult;
use crate::request::VerifyRequest;
use crate::selected::SelectedTest;

pub(crate) struct Maven;

/// The class that holds model-written Java tests.
const GENERATED_CLASS: &str = "CodeforgeGeneratedTest";

impl Runner for Maven {
    fn test_id(&self, rel_path: &str, chain: Vec<String>, name: &str) -> String {
        let class = chain.first().cloned().unwrap_or_else(|| {
            rel_path
                .rsplit('/')
                .next()
                .unwrap_or(rel_path)
                .trim_end_matches(".java")
                .to_string()
        });
        format!("{class}#{name}")
    }

    fn expand(&self, token: &str, ctx: &ExpandCtx) -> Option<Vec<String>> {
        match token {
            // Tests are only ever named inside a `-Dtest=` filter.
            "{tests}" => Some(Vec::new()),
            "{settings}" => {
                // Configured, else the offline settings `.ci/setup` writes into the cache dir.
                let default = ctx.req.cache_dir.join("maven-settings.xml");
                let s = ctx
                    .req
                    .settings
                    .maven_settings
                    .clone()
                    .or_else(|| default.is_file().then_some(default));
                let mut out = Vec::new();
                if let Some(s) = s {
                    // A copy beside the scratch copy's Maven repository: the cache dir is
                    // hidden from the run.
                    let copy = ctx.base.join("m2").join("settings.xml");
                    let _ = std::fs::create_dir_all(ctx.base.join("m2"));
                    let used = match std::fs::copy(&s, &copy) {
                        Ok(_) => copy,
                        Err(_) => s,
                    };
                    out.push("-s".into());
                    out.push(used.to_string_lossy().into_owned());
                }
                Some(out)
            }
            _ if token.contains("{tests}") => {
                // Surefire: `Cls#m1+m2,Cls2#m3`.
                let mut classes: Vec<(String, Vec<String>)> = Vec::new();
                for s in &ctx.plan.tests {
                    let (c, m) = s.id.split_once('#').unwrap_or((&s.id, ""));
                    match classes.iter_mut().find(|(k, _)| k == c) {
                        Some((_, ms)) => ms.push(m.to_string()),
                        None => classes.push((c.to_string(), vec![m.to_string()])),
                    }
                }
                let filter = classes
                    .iter()
                    .map(|(c, ms)| format!("{c}#{}", ms.join("+")))
                    .collect::<Vec<_>>()
                    .join(",");
                Some(vec![token.replace("{tests}", &filter)])
            }
            _ => None,
        }
    }

    fn is_result_of(&self, t: &SelectedTest, r: &TestResult) -> bool {
        let (c, m) = t.id.split_once('#').unwrap_or((&t.id, ""));
        base_name(r).ends_with(&format!("{c}.{m}"))
    }

    /// Surefire's `pkg.Cls.method` as the filter `Cls#method`.
    fn selection_of(&self, r: &TestResult) -> Option<(String, String)> {
        let (class_path, method) = base_name(r).rsplit_once('.')?;
        let class = class_path.rsplit('.').next().unwrap_or(class_path);
        if class.is_empty() || method.is_empty() {
            return None;
        }
        Some((format!("{class}#{method}"), method.to_string()))
    }

    fn generated_tests(
        &self,
        req: &VerifyRequest,
        project_dir: &str,
        code: &str,
    ) -> Result<GeneratedTests, String> {
        // The model's methods go into a test class of their own, in the target's package.
        let target = std::fs::read_to_string(req.root.join(&req.rel_path)).unwrap_or_default();
        let package = java_package(&target);
        let class = java_test_class(&target, &package, code);
        let file_name = format!("{GENERATED_CLASS}.java");
        let names = generated_test_names(req.language, &file_name, &class, true)?;
        let mut rel = project_dir.to_string();
        if !rel.is_empty() {
            rel.push('/');
        }
        rel.push_str("src/test/java/");
        if !package.is_empty() {
            rel.push_str(&package.replace('.', "/"));
            rel.push('/');
        }
        rel.push_str(&file_name);
        Ok(GeneratedTests {
            appended: None,
            tests: generated_selection(&names, &rel, |n| format!("{GENERATED_CLASS}#{n}")),
            file: Some((rel, class)),
        })
    }
}

/// The package a Java file declares (`""` for the default package).
fn java_package(text: &str) -> String {
    text.lines()
        .map(str::trim)
        .find_map(|l| l.strip_prefix("package "))
        .map(|p| p.trim_end_matches(';').trim().to_string())
        .unwrap_or_default()
}

/// A JUnit 4 test class holding the model's test methods: in the target's package, with the
/// target file's imports, JUnit's, and any the model wrote. The methods are taken out of a class
/// when the model wrote one anyway, and made `public` (JUnit 4 runs only those).
fn java_test_class(target: &str, package: &str, code: &str) -> String {
    let mut imports: Vec<String> = target
        .lines()
        .chain(code.lines())
        .map(str::trim)
        .filter(|l| l.starts_with("import ") && l.ends_with(';'))
        .map(str::to_string)
        .collect();
    imports.push("import org.junit.Test;".into());
    imports.push("import static org.junit.Assert.*;".into());
    imports.dedup();
    let members = java_members(code);
    let package = if package.is_empty() {
        String::new()
    } else {
        format!("package {package};\n\n")
    };
    format!(
        "{package}{}\n\npublic class {GENERATED_CLASS} {{\n{members}\n}}\n",
        imports.join("\n")
    )
}

/// The members of the class the model wrote (or its code when it wrote bare methods), without
/// package and import lines, test methods made `public`.
fn java_members(code: &str) -> String {
    let body = match code
        .find("class ")
        .and_then(|c| code[c..].find('{').map(|b| c + b))
    {
        Some(open) => match code.rfind('}') {
            Some(close) if close > open => &code[open + 1..close],
            _ => &code[open + 1..],
        },
        None => code,
    };
    body.lines()
        .filter(|l| {
            let t = l.trim_start();
            !(t.starts_with("import ") || t.starts_with("package "))
        })
        .map(|l| {
            let t = l.trim_start();
            let indent = &l[..l.len() - t.len()];
            let t = t
                .strip_prefix("private ")
                .or_else(|| t.strip_prefix("protected "))
                .unwrap_or(t);
            if t.starts_with("void ") || t.starts_with("static void ") {
                format!("{indent}public {t}")
            } else if let Some(rest) = t.strip_prefix("@Test void ") {
                format!("{indent}@Test public void {rest}")
            } else {
                format!("{indent}{t}")
            }
        })
        .collect::<Vec<_>>()
        .join("\n")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn java_test_methods_come_out_of_a_class_and_become_public() {
        let code = "import java.util.List;\nimport org.junit.Test;\n\npublic class StringsTest {\n    @Test\n    void testEmpty() {\n        assertEquals(0, Strings.count(\"\"));\n    }\n    @Test void testOne() { assertEquals(1, Strings.count(\"a\")); }\n    private static int helper() { return 1; }\n}\n";
        let m = java_members(code);
        assert!(
            m.contains("    @Test\n    public void testEmpty() {"),
            "{m}"
        );
        assert!(m.contains("    @Test public void testOne()"), "{m}");
        assert!(m.contains("    static int helper()"), "{m}");
        assert!(!m.contains("import ") && !m.contains("class "), "{m}");
        // Bare methods stay as they are, made public.
        let bare = "@Test\npublic void testTwo() {\n    assertTrue(true);\n}\n";
        assert_eq!(
            java_members(bare),
            "@Test\npublic void testTwo() {\n    assertTrue(true);\n}"
        );
    }
}
