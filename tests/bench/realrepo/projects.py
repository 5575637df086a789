"""The real projects of the real-repository benchmark: where each comes from, how its users set it
up, and how its whole test suite runs (the judge of every mutant).

Each entry:
  name      directory under WORK/projects/
  language  python | rust | java
  fetch     ("pypi", "NAME==VERSION") sdist with its tests; ("crate", "NAME", "VERSION") from
            static.crates.io; ("debian", "java/prepare.sh") a Debian source package made buildable
            offline by that script
  install   commands run once in the project dir (lists of argv; "{python}" is python3)
  suite     the project's whole test suite, fail-fast where the runner has it (argv; "{settings}"
            is the offline Maven settings file)
  sources   files (relative) whose documented functions may be chosen
  take      how many functions to choose
"""

PROJECTS = [
    {
        "name": "humanize",
        "language": "python",
        # src/ layout, editable install (hatchling + hatch-vcs), pytest 9 config in pyproject.toml
        # (doctests of src/ included), freezegun.
        "fetch": ("pypi", "humanize==4.17.0"),
        "install": [["{python}", "-m", "venv", ".venv"],
                    [".venv/bin/pip", "install", "-q", "-e", ".[tests]"]],
        "suite": [".venv/bin/python", "-m", "pytest", "-q", "-x", "-p", "no:cacheprovider",
                  "-p", "no:randomly", "--benchmark-disable"],
        "sources": ["src/humanize/number.py", "src/humanize/time.py", "src/humanize/filesize.py",
                    "src/humanize/lists.py"],
        "take": 14,
    },
    {
        "name": "toolz",
        "language": "python",
        # package with its tests inside it (toolz/tests), setuptools, editable install.
        "fetch": ("pypi", "toolz==1.2.0"),
        "install": [["{python}", "-m", "venv", ".venv"],
                    [".venv/bin/pip", "install", "-q", "-e", ".", "pytest"]],
        "suite": [".venv/bin/python", "-m", "pytest", "-q", "-x", "-p", "no:cacheprovider"],
        "sources": ["toolz/itertoolz.py", "toolz/dicttoolz.py", "toolz/functoolz.py"],
        "take": 14,
    },
    {
        "name": "inflection",
        "language": "python",
        # one module and one test file at the root, setup.py, editable install.
        "fetch": ("pypi", "inflection==0.5.1"),
        "install": [["{python}", "-m", "venv", ".venv"],
                    [".venv/bin/pip", "install", "-q", "-e", ".", "pytest"]],
        "suite": [".venv/bin/python", "-m", "pytest", "-q", "-x", "-p", "no:cacheprovider"],
        "sources": ["inflection/__init__.py"],
        "take": 10,
    },
    {
        "name": "strsim",
        "language": "rust",
        # unit tests in src/lib.rs and an integration test crate in tests/.
        "fetch": ("crate", "strsim", "0.11.1"),
        "install": [],
        "suite": ["cargo", "test", "-q", "--offline"],
        "sources": ["src/lib.rs"],
        "take": 10,
    },
    {
        "name": "textwrap",
        "language": "rust",
        # a crate with optional features on by default (unicode-width, smawk, unicode-linebreak),
        # unit tests in each module, integration tests in tests/, dev-dependencies from crates.io.
        # The judge leaves out the doc-tests (hundreds of separate compilations).
        "fetch": ("crate", "textwrap", "0.16.1"),
        "install": [],
        "suite": ["cargo", "test", "-q", "--lib", "--tests"],
        "sources": ["src/core.rs", "src/wrap.rs", "src/fill.rs", "src/indentation.rs",
                    "src/refill.rs", "src/columns.rs", "src/word_separators.rs",
                    "src/word_splitters.rs", "src/wrap_algorithms.rs", "src/line_ending.rs"],
        "take": 12,
    },
    {
        "name": "commons-codec",
        # Apache Commons Codec 1.15 from Debian's source package (deb-src), JUnit 4, a standalone
        # pom (its parent pom is not in Debian's repository), built offline against Debian's
        # Maven repository.
        "language": "java",
        "fetch": ("debian", "java/prepare.sh"),
        "install": [],
        "suite": ["mvn", "-q", "-B", "-o", "-s", "{settings}", "test"],
        "sources": None,  # every main source file
        "take": 12,
    },
]
