#!/usr/bin/env python3
"""Validates editors/helix/languages.toml against Helix's configuration schema rules.

No Helix binary can be had on this project's machines, so the rules are those of Helix's own
deserializer (helix-core `syntax/config.rs`): `[[language]]` entries deny unknown fields and list
`language-servers` as names or `{name, only-features, except-features}` tables with known
features; a `[language-server.NAME]` needs a string `command`, optional `args` (strings),
`environment` (string → string), `config` (a table, sent as initializationOptions), `timeout`
(a positive integer) and `required-root-patterns` (strings). On top of that, CodeForge's own rules:
the server is `codeforge lsp`, it is added to python, rust and java, and its `config` uses only
keys the server accepts (read from server/config/src/lib.rs, whose layers deny unknown keys).
The tests also hold the shipped file to a bare `command = "codeforge"` (found on PATH) and check
the README's worked merge into a user's own languages.toml with the same rules.

    python3 validate_languages.py [FILE]      # exit 1 and one line per problem when invalid
    python3 -m unittest validate_languages    # the validator's own tests
"""
import re
import sys
import tomllib
import unittest
from pathlib import Path

HERE = Path(__file__).resolve().parent
DEFAULT_FILE = HERE.parent / "languages.toml"
README = HERE.parent / "README.md"
SERVER_CONFIG_RS = HERE.parents[2] / "server" / "config" / "src" / "lib.rs"

TOP_LEVEL = {"language", "language-server", "grammar", "use-grammars"}
LANGUAGE_FIELDS = {
    "name", "language-id", "scope", "file-types", "shebangs", "roots", "comment-token", "comment-tokens",
    "block-comment-tokens", "text-width", "soft-wrap", "auto-format", "formatter", "path-completion",
    "word-completion", "diagnostic-severity", "grammar", "injection-regex", "language-servers", "indent",
    "debugger", "auto-pairs", "rulers", "workspace-lsp-roots", "persistent-diagnostic-sources",
}
SERVER_FIELDS = {"command", "args", "environment", "config", "timeout", "required-root-patterns"}
FEATURES = {
    "format", "goto-declaration", "goto-definition", "goto-type-definition", "goto-reference",
    "goto-implementation", "signature-help", "hover", "document-highlight", "completion", "code-action",
    "workspace-command", "document-symbols", "workspace-symbols", "diagnostics", "rename-symbol",
    "inlay-hints", "document-colors",
}
# Servers Helix defines itself (its default languages.toml) for the languages CodeForge serves.
HELIX_DEFAULT_SERVERS = {"ruff", "jedi", "pylsp", "ty", "pyright", "basedpyright", "pyrefly", "rust-analyzer", "jdtls"}
# A partial [[language]] entry is merged into Helix's default of the same name.
HELIX_LANGUAGES = {"python", "rust", "java"}
CODEFORGE_LANGUAGES = {"python", "rust", "java"}
LAYER_STRUCTS = {"index": "IndexLayer", "embeddings": "EmbeddingsLayer", "generation": "GenerationLayer", "verify": "VerifyLayer"}


def server_layer_keys(rust_source: str) -> dict:
    """{section: {key, ...}} from the `pub struct XLayer { pub key: ... }` definitions."""
    keys = {}
    for section, struct in LAYER_STRUCTS.items():
        m = re.search(r"pub struct %s \{(.*?)\n\}" % struct, rust_source, re.S)
        if not m:
            raise ValueError(f"struct {struct} not found in server/config/src/lib.rs")
        keys[section] = set(re.findall(r"pub (\w+):", m.group(1)))
    return keys


def validate(doc: dict, layer_keys: dict) -> list:
    problems = []
    for k in doc:
        if k not in TOP_LEVEL:
            problems.append(f"unknown top-level key `{k}`")
    servers = doc.get("language-server", {})
    if not isinstance(servers, dict):
        problems.append("`language-server` must be a table")
        servers = {}
    for name, s in servers.items():
        where = f"[language-server.{name}]"
        if not isinstance(s, dict):
            problems.append(f"{where} must be a table")
            continue
        for k in s:
            if k not in SERVER_FIELDS:
                problems.append(f"{where}: unknown field `{k}` (Helix ignores it)")
        if not isinstance(s.get("command"), str) or not s.get("command"):
            problems.append(f"{where}: missing `command` (a string)")
        if "args" in s and not (isinstance(s["args"], list) and all(isinstance(a, str) for a in s["args"])):
            problems.append(f"{where}: `args` must be a list of strings")
        if "environment" in s and not (isinstance(s["environment"], dict) and all(isinstance(v, str) for v in s["environment"].values())):
            problems.append(f"{where}: `environment` must map names to strings")
        if "timeout" in s and not (isinstance(s["timeout"], int) and not isinstance(s["timeout"], bool) and s["timeout"] > 0):
            problems.append(f"{where}: `timeout` must be a positive integer (seconds)")
        if "config" in s and not isinstance(s["config"], dict):
            problems.append(f"{where}: `config` must be a table")
        if "required-root-patterns" in s and not (isinstance(s["required-root-patterns"], list) and all(isinstance(a, str) for a in s["required-root-patterns"])):
            problems.append(f"{where}: `required-root-patterns` must be a list of strings")
    languages = doc.get("language", [])
    if not isinstance(languages, list):
        problems.append("`language` must be an array of tables ([[language]])")
        languages = []
    seen = {}
    for i, lang in enumerate(languages):
        name = lang.get("name") if isinstance(lang, dict) else None
        where = f"[[language]] #{i + 1} ({name or 'no name'})"
        if not isinstance(lang, dict):
            problems.append(f"{where} must be a table")
            continue
        if not isinstance(name, str):
            problems.append(f"{where}: missing `name`")
            continue
        if name in seen:
            problems.append(f"{where}: `{name}` is defined twice")
        seen[name] = lang
        for k in lang:
            if k not in LANGUAGE_FIELDS:
                problems.append(f"{where}: unknown field `{k}` (Helix rejects the file)")
        if name not in HELIX_LANGUAGES:
            for required in ("scope", "file-types"):
                if required not in lang:
                    problems.append(f"{where}: a new language needs `{required}`")
        for entry in lang.get("language-servers", []):
            if isinstance(entry, str):
                server = entry
            elif isinstance(entry, dict):
                server = entry.get("name")
                for k in entry:
                    if k not in {"name", "only-features", "except-features"}:
                        problems.append(f"{where}: unknown field `{k}` in a language-servers entry")
                for k in ("only-features", "except-features"):
                    for f in entry.get(k, []):
                        if f not in FEATURES:
                            problems.append(f"{where}: unknown feature `{f}` in `{k}`")
                if not isinstance(server, str):
                    problems.append(f"{where}: a language-servers table needs `name`")
                    continue
            else:
                problems.append(f"{where}: language-servers entries are names or tables")
                continue
            if server not in servers and server not in HELIX_DEFAULT_SERVERS:
                problems.append(f"{where}: language server `{server}` is not defined")
    # CodeForge's own rules.
    cf = servers.get("codeforge")
    if not isinstance(cf, dict):
        problems.append("[language-server.codeforge] is missing")
    else:
        if Path(cf.get("command", "")).name != "codeforge" or cf.get("args") != ["lsp"]:
            problems.append("[language-server.codeforge] must run `codeforge lsp`")
        config = cf.get("config", {})
        if isinstance(config, dict):
            for section, values in config.items():
                if section not in layer_keys:
                    problems.append(f"[language-server.codeforge.config]: unknown section `{section}` (the server rejects the layer)")
                    continue
                if not isinstance(values, dict):
                    problems.append(f"[language-server.codeforge.config.{section}] must be a table")
                    continue
                for k in values:
                    if k not in layer_keys[section]:
                        problems.append(f"[language-server.codeforge.config.{section}]: unknown key `{k}` (the server rejects the layer)")
    for name in sorted(CODEFORGE_LANGUAGES):
        lang = seen.get(name)
        names = []
        for e in (lang or {}).get("language-servers", []):
            names.append(e if isinstance(e, str) else e.get("name") if isinstance(e, dict) else None)
        if names.count("codeforge") != 1:
            problems.append(f"[[language]] {name}: `codeforge` must be in its language-servers once")
    return problems


def main(argv):
    path = Path(argv[1]) if len(argv) > 1 else DEFAULT_FILE
    try:
        doc = tomllib.loads(path.read_text(encoding="utf-8"))
    except tomllib.TOMLDecodeError as e:
        print(f"{path}: not valid TOML: {e}")
        return 1
    problems = validate(doc, server_layer_keys(SERVER_CONFIG_RS.read_text(encoding="utf-8")))
    for p in problems:
        print(f"{path}: {p}")
    if not problems:
        langs = [lang["name"] for lang in doc.get("language", [])]
        print(f"{path}: valid ({len(doc.get('language-server', {}))} language server(s), languages {', '.join(langs)})")
    return 1 if problems else 0


class ValidatorTests(unittest.TestCase):
    """The validator itself: the shipped file passes and each rule catches its mistake."""

    keys = server_layer_keys(SERVER_CONFIG_RS.read_text(encoding="utf-8"))

    def shipped(self):
        return tomllib.loads(DEFAULT_FILE.read_text(encoding="utf-8"))

    def problems_after(self, change):
        doc = self.shipped()
        change(doc)
        return validate(doc, self.keys)

    def test_shipped_file_is_valid(self):
        self.assertEqual(validate(self.shipped(), self.keys), [])

    def test_server_keys_are_read_from_the_server(self):
        self.assertIn("api_key_env", self.keys["generation"])
        self.assertIn("trust", self.keys["verify"])

    def test_unknown_language_field_is_rejected(self):
        p = self.problems_after(lambda d: d["language"][0].__setitem__("language-server", {"command": "x"}))
        self.assertTrue(any("unknown field `language-server`" in x for x in p), p)

    def test_server_needs_command(self):
        p = self.problems_after(lambda d: d["language-server"]["codeforge"].pop("command"))
        self.assertTrue(any("missing `command`" in x for x in p), p)

    def test_undefined_server_is_rejected(self):
        p = self.problems_after(lambda d: d["language"][1]["language-servers"].append("nope"))
        self.assertTrue(any("`nope` is not defined" in x for x in p), p)

    def test_unknown_feature_is_rejected(self):
        p = self.problems_after(lambda d: d["language"][2]["language-servers"].append({"name": "codeforge", "only-features": ["inline-completion"]}))
        self.assertTrue(any("unknown feature `inline-completion`" in x for x in p), p)
        self.assertTrue(any("java: `codeforge` must be in its language-servers once" in x for x in p), p)

    def test_codeforge_config_keys_are_checked_against_the_server(self):
        p = self.problems_after(lambda d: d["language-server"]["codeforge"]["config"]["generation"].__setitem__("api_key", "sk-x"))
        self.assertTrue(any("unknown key `api_key`" in x for x in p), p)
        p = self.problems_after(lambda d: d["language-server"]["codeforge"]["config"].__setitem__("model", {}))
        self.assertTrue(any("unknown section `model`" in x for x in p), p)

    def test_codeforge_must_be_added_to_each_language(self):
        p = self.problems_after(lambda d: d["language"][0]["language-servers"].remove("codeforge"))
        self.assertTrue(any("python: `codeforge` must be in" in x for x in p), p)

    def test_timeout_and_args_types(self):
        p = self.problems_after(lambda d: d["language-server"]["codeforge"].update({"timeout": "120", "args": "lsp"}))
        self.assertTrue(any("`timeout` must be a positive integer" in x for x in p), p)
        self.assertTrue(any("`args` must be a list of strings" in x for x in p), p)

    def test_shipped_file_finds_the_server_on_path(self):
        # No full path: Helix looks `codeforge` up on PATH (cargo install puts it in ~/.cargo/bin).
        self.assertEqual(self.shipped()["language-server"]["codeforge"]["command"], "codeforge")

    def test_readme_merge_example_is_valid(self):
        # The README's worked merge (its first ```toml block): a user's own [[language]] python
        # entry, kept, with codeforge added to its list; our server tables; rust and java copied.
        m = re.search(r"```toml\n(.*?)```", README.read_text(encoding="utf-8"), re.S)
        self.assertIsNotNone(m, "README.md has no ```toml block")
        merged = tomllib.loads(re.sub(r"(?m)^ {3}", "", m.group(1)))
        self.assertEqual(validate(merged, self.keys), [])
        python = next(lang for lang in merged["language"] if lang["name"] == "python")
        self.assertEqual(python["language-servers"][-1], "codeforge")
        self.assertTrue(set(python) - {"name", "language-servers"}, "the example keeps a user's own keys")
        self.assertEqual(merged["language-server"]["codeforge"]["command"], "codeforge")

    def test_a_language_defined_twice_is_rejected(self):
        p = self.problems_after(lambda d: d["language"].append({"name": "python", "language-servers": ["codeforge"]}))
        self.assertTrue(any("`python` is defined twice" in x for x in p), p)

    def test_new_language_needs_scope_and_file_types(self):
        p = self.problems_after(lambda d: d["language"].append({"name": "cobol", "language-servers": ["codeforge"]}))
        self.assertTrue(any("a new language needs `scope`" in x for x in p), p)


if __name__ == "__main__":
    sys.exit(main(sys.argv))
