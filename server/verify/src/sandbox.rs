//! The rootless sandbox every test run of a candidate goes through (Linux 5.13+, no privileges):
//! a user namespace with its own mount, pid, network, ipc and uts namespaces; a read-only view of
//! the system with the user's home, the workspace and every other private place hidden; writable
//! only the scratch copy, the build output and a private tmp; Landlock rules that say the same
//! again; a seccomp filter that refuses sockets other than `AF_UNIX` (and io_uring, keyrings);
//! `no_new_privs`, no capabilities, resource limits. Where the kernel refuses namespaces, the
//! Landlock + seccomp layers alone give "reduced" isolation; without Landlock there is none, and
//! the caller decides whether to run at all. Everything is planned in the parent ([`Plan`]);
//! the child only replays raw syscalls (no allocation between fork and exec).

#[cfg(target_os = "linux")]
use std::ffi::CString;
#[cfg(target_os = "linux")]
use std::os::unix::ffi::OsStrExt;
use std::path::{Path, PathBuf};

/// How strongly a run is contained, weakest first (so levels compare).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, serde::Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Level {
    /// Nothing but a process group and limits.
    None,
    /// No namespaces (the kernel refused them): Landlock + seccomp + limits only.
    Reduced,
    /// Namespaces + mounts + Landlock + seccomp.
    Full,
}

/// The least level the user accepts, from their `verify.sandbox`.
impl From<codeforge_config::SandboxMinimum> for Level {
    fn from(m: codeforge_config::SandboxMinimum) -> Level {
        match m {
            codeforge_config::SandboxMinimum::Full => Level::Full,
            codeforge_config::SandboxMinimum::Reduced => Level::Reduced,
            codeforge_config::SandboxMinimum::None => Level::None,
        }
    }
}

impl Level {
    pub fn as_str(self) -> &'static str {
        match self {
            Level::Full => "full",
            Level::Reduced => "reduced",
            Level::None => "none",
        }
    }
}

/// What this machine allows, probed once.
#[derive(Debug, Clone, serde::Serialize)]
pub struct Support {
    pub level: Level,
    pub user_namespaces: bool,
    /// Landlock ABI version, 0 when unavailable.
    pub landlock_abi: i32,
    pub seccomp: bool,
    /// Why a layer is missing (empty when everything is there).
    pub missing: Vec<String>,
}

impl Support {
    /// One line for the user: what a test run gets on this machine.
    pub fn summary(&self) -> String {
        match self.level {
            Level::Full => format!(
                "full isolation: user namespace (own mount, pid, network, ipc, uts), read-only system, home and workspace hidden, writable only a scratch copy and a private tmp, no network, Landlock ABI {}, seccomp",
                self.landlock_abi
            ),
            Level::Reduced => format!(
                "reduced isolation ({}): Landlock ABI {} keeps writes in the scratch copy and hides home and workspace, seccomp blocks network sockets; no pid or mount namespace",
                self.missing.join("; "),
                self.landlock_abi
            ),
            Level::None => format!(
                "no isolation ({}): a test run could read and change anything your account can",
                self.missing.join("; ")
            ),
        }
    }
}

/// The machine's sandbox support (probed by starting one sandboxed `true`, once per process).
pub fn support() -> &'static Support {
    static S: std::sync::OnceLock<Support> = std::sync::OnceLock::new();
    S.get_or_init(probe)
}

#[cfg(target_os = "linux")]
fn probe() -> Support {
    let abi = linux::landlock_abi();
    let seccomp = unsafe { libc::prctl(libc::PR_GET_SECCOMP, 0, 0, 0, 0) } >= 0;
    let mut missing = Vec::new();
    let userns = match linux::probe_namespaces() {
        Ok(()) => true,
        Err(e) => {
            missing.push(format!("user namespaces unavailable: {e}"));
            false
        }
    };
    if abi < 1 {
        missing.push("Landlock unavailable (Linux 5.13+ with landlock in the LSM list)".into());
    }
    if !seccomp {
        missing.push("seccomp unavailable".into());
    }
    let level = if userns && abi >= 1 && seccomp {
        Level::Full
    } else if abi >= 1 && seccomp {
        Level::Reduced
    } else {
        Level::None
    };
    Support {
        level,
        user_namespaces: userns,
        landlock_abi: abi,
        seccomp,
        missing,
    }
}

#[cfg(not(target_os = "linux"))]
fn probe() -> Support {
    // macOS: the seam is a sandbox-exec profile (deny default, allow read of the system, write of
    // the scratch copy, deny network); not built yet, so nothing runs contained here.
    Support {
        level: Level::None,
        user_namespaces: false,
        landlock_abi: 0,
        seccomp: false,
        missing: vec![format!("no sandbox on {}", std::env::consts::OS)],
    }
}

/// What one run may see and touch. Paths are absolute, as on the host.
#[derive(Debug, Clone, Default)]
pub struct Policy {
    /// An empty directory the sandbox root is assembled on (owned by the user).
    pub mount_point: PathBuf,
    /// Hidden: replaced by empty read-only directories (home, workspace, config dirs).
    pub hidden: Vec<PathBuf>,
    /// Shown writable at their own paths (scratch copy, build output).
    pub writable: Vec<PathBuf>,
    /// `(source, destination)`: the source shown writable at the destination (the scratch copy
    /// where the workspace is, so editable installs and absolute paths reach the copy).
    pub mapped: Vec<(PathBuf, PathBuf)>,
    /// Shown read-only even inside hidden directories (toolchains, virtualenvs).
    pub read_only: Vec<PathBuf>,
    /// A writable directory whose writes are kept out of it: the run sees `lower` (one of
    /// `writable`) through an overlay whose upper layer is `upper` (emptied before each run), so
    /// nothing a candidate writes there reaches the next candidate.
    pub overlay: Option<Overlay>,
    /// Without namespaces (reduced isolation): the run's `TMPDIR`, its only tmp.
    pub tmp_dir: Option<PathBuf>,
    /// Allow network sockets (loopback-only namespace is not built: on means the host network).
    pub network: bool,
    pub limits: Limits,
}

/// See [`Policy::overlay`].
#[derive(Debug, Clone)]
pub struct Overlay {
    pub lower: PathBuf,
    /// Where the run's writes land (read it after the run, e.g. for reports).
    pub upper: PathBuf,
    /// overlayfs's work directory (same filesystem as `upper`).
    pub work: PathBuf,
}

impl Overlay {
    /// Empties the upper and work directories for a new run.
    pub fn reset(&self) -> std::io::Result<()> {
        for d in [&self.upper, &self.work] {
            if d.exists() && std::fs::remove_dir_all(d).is_err() {
                // overlayfs leaves `work/work` with mode 000.
                make_removable(d);
                std::fs::remove_dir_all(d)?;
            }
            std::fs::create_dir_all(d)?;
        }
        Ok(())
    }
}

fn make_removable(dir: &Path) {
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        let _ = std::fs::set_permissions(dir, std::fs::Permissions::from_mode(0o700));
    }
    if let Ok(rd) = std::fs::read_dir(dir) {
        for e in rd.flatten() {
            if e.file_type().is_ok_and(|t| t.is_dir()) {
                make_removable(&e.path());
            }
        }
    }
}

/// Resource limits of one run (per process, as `setrlimit` gives them).
#[derive(Debug, Clone, Copy)]
pub struct Limits {
    /// Processes of the run (its user namespace's count).
    pub processes: u64,
    /// Bytes of writable private memory (`RLIMIT_DATA`).
    pub memory: u64,
    /// Largest file a run may write, bytes.
    pub file_size: u64,
    /// CPU seconds per process.
    pub cpu_s: u64,
    /// Size of the private tmp (memory-backed), bytes.
    pub tmp_size: u64,
}

impl Default for Limits {
    fn default() -> Self {
        #[cfg(unix)]
        let ram = {
            // SAFETY: sysconf has no preconditions.
            let pages = unsafe { libc::sysconf(libc::_SC_PHYS_PAGES) };
            let size = unsafe { libc::sysconf(libc::_SC_PAGESIZE) };
            if pages > 0 && size > 0 {
                pages as u64 * size as u64
            } else {
                8u64 << 30
            }
        };
        #[cfg(not(unix))]
        let ram = 8u64 << 30;
        Limits {
            processes: 512,
            memory: (ram / 2).clamp(1 << 30, 16 << 30),
            file_size: 2 << 30,
            cpu_s: 1800,
            tmp_size: 512 << 20,
        }
    }
}

/// The places every run hides, beside the caller's: home directories, runtime dirs, mounts of
/// removable media; `/tmp`, `/var/tmp` and `/dev/shm` become a private tmp.
pub fn default_hidden() -> Vec<PathBuf> {
    let mut v: Vec<PathBuf> = [
        "/home",
        "/root",
        "/run/user",
        "/media",
        "/mnt",
        "/srv",
        "/var/mail",
    ]
    .iter()
    .map(PathBuf::from)
    .collect();
    for var in [
        "HOME",
        "XDG_CONFIG_HOME",
        "XDG_DATA_HOME",
        "XDG_CACHE_HOME",
        "XDG_RUNTIME_DIR",
    ] {
        if let Some(p) = std::env::var_os(var)
            .map(PathBuf::from)
            .filter(|p| p.is_absolute())
        {
            v.push(p);
        }
    }
    v
}

/// The private tmp directories (fresh, empty, writable, per run).
pub const PRIVATE_TMP: [&str; 3] = ["/tmp", "/var/tmp", "/dev/shm"];

/// Environment variables a run may inherit (the rest is cleared); the runner's own (HOME,
/// CARGO_*, MAVEN_OPTS, …) are set by the caller on top.
pub fn env_allowed(name: &str) -> bool {
    const EXACT: [&str; 14] = [
        "PATH",
        "LANG",
        "LANGUAGE",
        "TZ",
        "TERM",
        "JAVA_HOME",
        "JDK_HOME",
        "M2_HOME",
        "MAVEN_HOME",
        "RUSTUP_TOOLCHAIN",
        "PYTHONPATH",
        "VIRTUAL_ENV",
        "RUSTFLAGS",
        "USER",
    ];
    if !env_secret_name(name) && (EXACT.contains(&name) || name.starts_with("LC_")) {
        return true;
    }
    false
}

/// Names that look like they hold a secret (never passed into a run, whatever an allowlist says).
pub fn env_secret_name(name: &str) -> bool {
    let n = name.to_ascii_uppercase();
    n.ends_with("_TOKEN")
        || n.ends_with("_KEY")
        || n.ends_with("_SECRET")
        || n.contains("PASSWORD")
        || n.contains("PASSWD")
        || n.starts_with("AWS_")
        || n.contains("API_KEY")
        || n.contains("CREDENTIAL")
        || n == "SSH_AUTH_SOCK"
}

#[cfg(target_os = "linux")]
fn cpath(p: &Path) -> CString {
    CString::new(p.as_os_str().as_bytes()).unwrap_or_else(|_| c"/nonexistent".to_owned())
}

#[cfg(target_os = "linux")]
/// `/a/b` under `root` (`root/a/b`).
fn under(root: &Path, p: &Path) -> PathBuf {
    root.join(p.strip_prefix("/").unwrap_or(p))
}

#[cfg(target_os = "linux")]
/// The directories to create (outermost first) so that `dst` exists below `root`.
fn prefixes(root: &Path, dst: &Path) -> Vec<CString> {
    let mut out = Vec::new();
    let mut acc = root.to_path_buf();
    for c in dst.strip_prefix("/").unwrap_or(dst).components() {
        acc.push(c);
        out.push(cpath(&acc));
    }
    out
}

#[cfg(target_os = "linux")]
/// Canonical form where the path exists (symlinks resolved), else as given.
fn canon(p: &Path) -> PathBuf {
    std::fs::canonicalize(p).unwrap_or_else(|_| p.to_path_buf())
}

#[cfg(target_os = "linux")]
/// Directories that may be read: everything under `/` except the hidden ones (their siblings
/// along the way are allowed one by one), plus the read-only exceptions. Landlock's read rules.
fn read_allowlist(hidden: &[PathBuf], extra: &[PathBuf]) -> Vec<PathBuf> {
    fn walk(dir: &Path, hidden: &[PathBuf], out: &mut Vec<PathBuf>, depth: usize) {
        if hidden.iter().any(|h| h == dir) {
            return;
        }
        let has_hidden_below = hidden.iter().any(|h| h.starts_with(dir) && h != dir);
        if !has_hidden_below || depth > 8 {
            out.push(dir.to_path_buf());
            return;
        }
        // Files directly in a directory that holds hidden ones cannot be allowed by a directory
        // rule without allowing the hidden ones too; they are left out (rarely needed: `/`'s
        // own files, a home directory's dotfiles).
        let Ok(rd) = std::fs::read_dir(dir) else {
            return;
        };
        for e in rd.flatten() {
            let p = e.path();
            if e.file_type().is_ok_and(|t| t.is_dir()) {
                walk(&p, hidden, out, depth + 1);
            }
        }
    }
    let mut out = Vec::new();
    walk(Path::new("/"), hidden, &mut out, 0);
    out.extend(extra.iter().cloned());
    out
}

#[cfg(target_os = "linux")]
/// A bind mount the child makes: `src` (host path) at `dst` (under the new root).
#[derive(Debug)]
struct Bind {
    src: CString,
    dst: CString,
    mkdirs: Vec<CString>,
    read_only: bool,
}

#[cfg(target_os = "linux")]
/// Everything the child needs, as C strings and numbers built before the fork.
#[derive(Debug)]
pub(crate) struct ChildPlan {
    pub level: Level,
    uid_map: Vec<u8>,
    gid_map: Vec<u8>,
    new_root: CString,
    new_dev: CString,
    new_proc: CString,
    /// `(destination, options, writable)`.
    tmpfs: Vec<(CString, CString, bool)>,
    binds: Vec<Bind>,
    /// `(mkdirs, destination, options)` of the overlay, mounted before the binds.
    overlay: Option<(Vec<CString>, CString, CString)>,
    cwd: CString,
    network: bool,
    ll_read: Vec<CString>,
    ll_write: Vec<CString>,
    ll_abi: i32,
    rlimits: Vec<(u32, u64)>,
    seccomp: Vec<linux::SockFilter>,
}

#[cfg(target_os = "linux")]
impl ChildPlan {
    /// Whether the run's writes to the overlay's lower directory land in its upper one.
    pub fn uses_overlay(&self) -> bool {
        self.overlay.is_some()
    }

    /// Plans a run in `cwd` (a host path; inside it is the same path) under `policy`.
    pub fn new(policy: &Policy, cwd: &Path, level: Level) -> ChildPlan {
        let sup = support();
        // SAFETY: plain getters.
        let (uid, gid) = unsafe { (libc::getuid(), libc::getgid()) };
        let root = canon(&policy.mount_point);
        let hidden: Vec<PathBuf> = {
            let mut h: Vec<PathBuf> = policy
                .hidden
                .iter()
                .filter(|p| p.is_absolute() && p.exists())
                .map(|p| canon(p))
                .filter(|p| p != Path::new("/"))
                .collect();
            h.sort();
            h.dedup();
            h
        };
        let writable: Vec<PathBuf> = policy
            .writable
            .iter()
            .filter(|p| p.is_dir())
            .map(|p| canon(p))
            .collect();
        let mapped: Vec<(PathBuf, PathBuf)> = policy
            .mapped
            .iter()
            .filter(|(s, _)| s.is_dir())
            .map(|(s, d)| (canon(s), canon(d)))
            .collect();
        let read_only: Vec<PathBuf> = policy
            .read_only
            .iter()
            .filter(|p| p.exists())
            .map(|p| canon(p))
            .collect();

        // tmpfs: hidden directories (read-only once their mount points exist) and the private
        // tmp (writable); shallow first, nothing under another one.
        let mut tmpfs_paths: Vec<(PathBuf, bool)> =
            hidden.iter().map(|h| (h.clone(), false)).collect();
        for t in PRIVATE_TMP {
            let p = canon(Path::new(t));
            if p.is_dir() {
                tmpfs_paths.retain(|(h, _)| *h != p);
                tmpfs_paths.push((p, true));
            }
        }
        tmpfs_paths.sort_by_key(|(p, _)| p.components().count());
        let mut tmpfs: Vec<(CString, CString, bool)> = Vec::new();
        let mut covered: Vec<PathBuf> = Vec::new();
        for (p, w) in tmpfs_paths {
            if covered.iter().any(|c| p.starts_with(c)) {
                continue;
            }
            let opts = if w {
                format!("size={},mode=1777", policy.limits.tmp_size)
            } else {
                "size=1m,mode=755".to_string()
            };
            tmpfs.push((cpath(&under(&root, &p)), CString::new(opts).unwrap(), w));
            covered.push(p);
        }
        // The overlay replaces the plain bind of its lower directory; what maps that directory
        // elsewhere maps the overlay's view (under the new root) instead.
        let overlay = policy.overlay.as_ref().and_then(|o| {
            let (lower, upper, work) = (canon(&o.lower), canon(&o.upper), canon(&o.work));
            let plain = |p: &Path| {
                !p.as_os_str()
                    .as_bytes()
                    .iter()
                    .any(|b| matches!(b, b',' | b':' | b'\\'))
            };
            (level == Level::Full
                && lower.is_dir()
                && upper.is_dir()
                && work.is_dir()
                && plain(&lower)
                && plain(&upper)
                && plain(&work))
            .then_some((lower, upper, work))
        });
        let overlay_lower = overlay.as_ref().map(|(l, _, _)| l.clone());
        // Binds, by destination depth so nested ones land on top.
        let mut binds: Vec<(PathBuf, PathBuf, bool)> = Vec::new();
        for w in &writable {
            if Some(w) != overlay_lower.as_ref() {
                binds.push((w.clone(), w.clone(), false));
            }
        }
        for (s, d) in &mapped {
            let src = if Some(s) == overlay_lower.as_ref() {
                under(&root, s)
            } else {
                s.clone()
            };
            binds.push((src, d.clone(), false));
        }
        for r in &read_only {
            binds.push((r.clone(), r.clone(), true));
        }
        binds.sort_by_key(|(_, d, _)| d.components().count());
        let binds = binds
            .into_iter()
            .map(|(s, d, ro)| Bind {
                src: cpath(&s),
                mkdirs: prefixes(&root, &d),
                dst: cpath(&under(&root, &d)),
                read_only: ro,
            })
            .collect();

        // Landlock: read the system minus the hidden places (plus the exceptions), write only
        // the writable ones.
        let mut rw: Vec<PathBuf> = writable.clone();
        if level == Level::Full {
            // The destinations show the scratch copy only where mounts made them so; without
            // mounts they are the user's own directories (the workspace) and stay read-never.
            rw.extend(mapped.iter().map(|(_, d)| d.clone()));
            // Fresh tmpfs mounts of the run's own.
            rw.extend(PRIVATE_TMP.iter().map(PathBuf::from));
        } else if let Some(t) = &policy.tmp_dir {
            // Without mounts the host's /tmp is shared (and may hold hidden places, which a
            // Landlock rule on /tmp would open again): the run gets `TMPDIR` instead.
            rw.push(canon(t));
        }
        let mut ro_extra = read_only.clone();
        ro_extra.extend(rw.iter().cloned());
        let ll_read = read_allowlist(&hidden, &ro_extra)
            .iter()
            .map(|p| cpath(p))
            .collect();
        let ll_write = rw.iter().map(|p| cpath(p)).collect();

        let l = policy.limits;
        let rlimits = vec![
            (libc::RLIMIT_NPROC as u32, l.processes),
            (libc::RLIMIT_DATA as u32, l.memory),
            (libc::RLIMIT_FSIZE as u32, l.file_size),
            (libc::RLIMIT_CPU as u32, l.cpu_s),
            (libc::RLIMIT_CORE as u32, 0),
        ];
        let overlay = overlay.map(|(lower, upper, work)| {
            (
                prefixes(&root, &lower),
                cpath(&under(&root, &lower)),
                CString::new(format!(
                    "lowerdir={},upperdir={},workdir={},userxattr",
                    lower.display(),
                    upper.display(),
                    work.display()
                ))
                .unwrap_or_default(),
            )
        });
        ChildPlan {
            level,
            overlay,
            uid_map: format!("{uid} {uid} 1\n").into_bytes(),
            gid_map: format!("{gid} {gid} 1\n").into_bytes(),
            new_dev: cpath(&root.join("dev")),
            new_proc: cpath(&root.join("proc")),
            new_root: cpath(&root),
            tmpfs,
            binds,
            cwd: cpath(&canon(cwd)),
            network: policy.network,
            ll_read,
            ll_write,
            ll_abi: sup.landlock_abi,
            rlimits,
            seccomp: linux::seccomp_program(policy.network),
        }
    }

    /// Namespaces first (in the process std forked; the caller forks pid 1 after this).
    ///
    /// # Safety
    /// Only between fork and exec: raw syscalls on data built before the fork.
    pub(crate) unsafe fn enter_namespaces(&self) -> Result<(), Failure> {
        if self.level != Level::Full {
            return Ok(());
        }
        unsafe { linux::enter_namespaces(self) }
    }

    /// Everything else, in the process that execs (pid 1 of the new pid namespace when full).
    ///
    /// # Safety
    /// Only between fork and exec.
    pub(crate) unsafe fn confine(&self) -> Result<(), Failure> {
        unsafe { linux::confine(self) }
    }
}

#[cfg(target_os = "linux")]
/// Which step of the setup failed, and the errno.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Failure {
    pub step: &'static str,
    pub errno: i32,
}

/// The first bytes a failed setup writes to the run's stderr (then it exits with [`SETUP_EXIT`]).
pub const SETUP_MARKER: &str = "codeforge sandbox setup failed: ";
pub const SETUP_EXIT: i32 = 125;

#[cfg(target_os = "linux")]
impl Failure {
    /// Writes the failure to stderr without allocating and exits.
    ///
    /// # Safety
    /// Only between fork and exec.
    pub(crate) unsafe fn report_and_exit(self) -> ! {
        let mut buf = [0u8; 160];
        let mut n = 0;
        for part in [SETUP_MARKER.as_bytes(), self.step.as_bytes(), b": errno "] {
            for &b in part {
                if n < buf.len() {
                    buf[n] = b;
                    n += 1;
                }
            }
        }
        let mut digits = [0u8; 12];
        let mut d = 0;
        let mut e = self.errno.unsigned_abs();
        loop {
            digits[d] = b'0' + (e % 10) as u8;
            d += 1;
            e /= 10;
            if e == 0 {
                break;
            }
        }
        while d > 0 && n < buf.len() {
            d -= 1;
            buf[n] = digits[d];
            n += 1;
        }
        if n < buf.len() {
            buf[n] = b'\n';
            n += 1;
        }
        unsafe {
            libc::write(2, buf.as_ptr().cast(), n);
            libc::_exit(SETUP_EXIT);
        }
    }
}

#[cfg(target_os = "linux")]
pub(crate) mod linux {
    use super::{ChildPlan, Failure, Level};

    fn errno() -> i32 {
        std::io::Error::last_os_error().raw_os_error().unwrap_or(0)
    }

    fn fail(step: &'static str) -> Failure {
        Failure {
            step,
            errno: errno(),
        }
    }

    const LANDLOCK_CREATE_RULESET_VERSION: u32 = 1;
    const LANDLOCK_RULE_PATH_BENEATH: u32 = 1;

    #[repr(C)]
    struct RulesetAttr {
        handled_access_fs: u64,
        handled_access_net: u64,
        scoped: u64,
    }

    #[repr(C, packed)]
    struct PathBeneath {
        allowed_access: u64,
        parent_fd: i32,
    }

    const FS_EXECUTE: u64 = 1 << 0;
    const FS_WRITE_FILE: u64 = 1 << 1;
    const FS_READ_FILE: u64 = 1 << 2;
    const FS_READ_DIR: u64 = 1 << 3;
    const FS_TRUNCATE: u64 = 1 << 14;
    const FS_IOCTL_DEV: u64 = 1 << 15;

    /// The kernel's Landlock ABI version (0: none).
    pub fn landlock_abi() -> i32 {
        // SAFETY: the version query takes no pointers.
        let r = unsafe {
            libc::syscall(
                libc::SYS_landlock_create_ruleset,
                std::ptr::null::<RulesetAttr>(),
                0usize,
                LANDLOCK_CREATE_RULESET_VERSION,
            )
        };
        if r < 0 { 0 } else { r as i32 }
    }

    /// Every filesystem right the ABI knows.
    fn fs_rights(abi: i32) -> u64 {
        let mut all = (1u64 << 13) - 1;
        if abi >= 2 {
            all |= 1 << 13; // REFER
        }
        if abi >= 3 {
            all |= FS_TRUNCATE;
        }
        if abi >= 5 {
            all |= FS_IOCTL_DEV;
        }
        all
    }

    /// Starts `true` in the namespaces the full sandbox uses (in a child, so nothing here changes).
    pub fn probe_namespaces() -> Result<(), String> {
        use std::os::unix::process::CommandExt;
        let mut cmd = std::process::Command::new("true");
        // SAFETY: raw syscalls only between fork and exec.
        unsafe {
            cmd.pre_exec(|| {
                let flags = libc::CLONE_NEWUSER
                    | libc::CLONE_NEWNS
                    | libc::CLONE_NEWPID
                    | libc::CLONE_NEWNET
                    | libc::CLONE_NEWIPC
                    | libc::CLONE_NEWUTS;
                if libc::unshare(flags) != 0 {
                    return Err(std::io::Error::last_os_error());
                }
                Ok(())
            });
        }
        match cmd.status() {
            Ok(s) if s.success() => Ok(()),
            Ok(s) => Err(format!("probe exited with {s}")),
            Err(e) => Err(e.to_string()),
        }
    }

    #[derive(Debug, Clone, Copy)]
    #[repr(C)]
    pub struct SockFilter {
        code: u16,
        jt: u8,
        jf: u8,
        k: u32,
    }

    #[repr(C)]
    struct SockFprog {
        len: u16,
        filter: *const SockFilter,
    }

    const fn stmt(code: u16, k: u32) -> SockFilter {
        SockFilter {
            code,
            jt: 0,
            jf: 0,
            k,
        }
    }
    const fn jump(code: u16, k: u32, jt: u8, jf: u8) -> SockFilter {
        SockFilter { code, jt, jf, k }
    }
    const LD_W_ABS: u16 = 0x20;
    const JEQ_K: u16 = 0x15;
    #[cfg(target_arch = "x86_64")]
    const JGE_K: u16 = 0x35;
    const RET_K: u16 = 0x06;
    const RET_ALLOW: u32 = 0x7fff_0000;
    const fn ret_errno(e: i32) -> u32 {
        0x0005_0000 | (e as u32 & 0xffff)
    }

    #[cfg(target_arch = "x86_64")]
    const AUDIT_ARCH: u32 = 0xC000_003E;
    #[cfg(target_arch = "aarch64")]
    const AUDIT_ARCH: u32 = 0xC000_00B7;
    #[cfg(not(any(target_arch = "x86_64", target_arch = "aarch64")))]
    const AUDIT_ARCH: u32 = 0;

    /// The filter: this architecture's syscalls only; no io_uring (it opens sockets past this
    /// filter), no kernel keyrings; without network, `socket` only for `AF_UNIX`.
    pub fn seccomp_program(network: bool) -> Vec<SockFilter> {
        let mut p = vec![
            stmt(LD_W_ABS, 4), // seccomp_data.arch
            jump(JEQ_K, AUDIT_ARCH, 1, 0),
            stmt(RET_K, ret_errno(libc::EPERM)),
            stmt(LD_W_ABS, 0), // seccomp_data.nr
        ];
        #[cfg(target_arch = "x86_64")]
        {
            // x32 syscalls.
            p.push(jump(JGE_K, 0x4000_0000, 0, 1));
            p.push(stmt(RET_K, ret_errno(libc::ENOSYS)));
        }
        let denied = [
            libc::SYS_io_uring_setup,
            libc::SYS_io_uring_enter,
            libc::SYS_io_uring_register,
            libc::SYS_keyctl,
            libc::SYS_add_key,
            libc::SYS_request_key,
        ];
        for nr in denied {
            p.push(jump(JEQ_K, nr as u32, 0, 1));
            p.push(stmt(RET_K, ret_errno(libc::ENOSYS)));
        }
        if !network {
            for nr in [libc::SYS_socket, libc::SYS_socketpair] {
                p.push(jump(JEQ_K, nr as u32, 0, 4));
                p.push(stmt(LD_W_ABS, 16)); // args[0] (low half): the domain
                p.push(jump(JEQ_K, libc::AF_UNIX as u32, 0, 1));
                p.push(stmt(RET_K, RET_ALLOW));
                p.push(stmt(RET_K, ret_errno(libc::EAFNOSUPPORT)));
            }
        }
        p.push(stmt(RET_K, RET_ALLOW));
        p
    }

    unsafe fn write_file(
        path: &std::ffi::CStr,
        data: &[u8],
        step: &'static str,
    ) -> Result<(), Failure> {
        unsafe {
            let fd = libc::open(path.as_ptr(), libc::O_WRONLY | libc::O_CLOEXEC);
            if fd < 0 {
                return Err(fail(step));
            }
            let n = libc::write(fd, data.as_ptr().cast(), data.len());
            let e = errno();
            libc::close(fd);
            if n != data.len() as isize {
                return Err(Failure { step, errno: e });
            }
        }
        Ok(())
    }

    pub(super) unsafe fn enter_namespaces(plan: &ChildPlan) -> Result<(), Failure> {
        unsafe {
            let mut flags = libc::CLONE_NEWUSER
                | libc::CLONE_NEWNS
                | libc::CLONE_NEWPID
                | libc::CLONE_NEWIPC
                | libc::CLONE_NEWUTS;
            if !plan.network {
                flags |= libc::CLONE_NEWNET;
            }
            if libc::unshare(flags) != 0 {
                return Err(fail("unshare"));
            }
            write_file(c"/proc/self/setgroups", b"deny", "setgroups")?;
            write_file(c"/proc/self/uid_map", &plan.uid_map, "uid_map")?;
            write_file(c"/proc/self/gid_map", &plan.gid_map, "gid_map")?;
        }
        Ok(())
    }

    #[repr(C)]
    struct MountAttr {
        attr_set: u64,
        attr_clr: u64,
        propagation: u64,
        userns_fd: u64,
    }
    const MOUNT_ATTR_RDONLY: u64 = 1;
    const MOUNT_ATTR_NOSUID: u64 = 2;
    const AT_RECURSIVE: u32 = 0x8000;

    unsafe fn set_read_only(path: &std::ffi::CStr, recursive: bool) -> Result<(), Failure> {
        let attr = MountAttr {
            attr_set: MOUNT_ATTR_RDONLY | MOUNT_ATTR_NOSUID,
            attr_clr: 0,
            propagation: 0,
            userns_fd: 0,
        };
        let r = unsafe {
            libc::syscall(
                libc::SYS_mount_setattr,
                libc::AT_FDCWD,
                path.as_ptr(),
                if recursive { AT_RECURSIVE } else { 0 },
                &attr as *const MountAttr,
                std::mem::size_of::<MountAttr>(),
            )
        };
        if r != 0 {
            Err(fail("mount_setattr read-only"))
        } else {
            Ok(())
        }
    }

    unsafe fn mounts(plan: &ChildPlan) -> Result<(), Failure> {
        unsafe {
            let null = std::ptr::null::<libc::c_char>();
            if libc::mount(
                null,
                c"/".as_ptr(),
                null,
                libc::MS_REC | libc::MS_PRIVATE,
                std::ptr::null(),
            ) != 0
            {
                return Err(fail("make / private"));
            }
            let r = plan.new_root.as_ptr();
            if libc::mount(
                c"/".as_ptr(),
                r,
                null,
                libc::MS_BIND | libc::MS_REC,
                std::ptr::null(),
            ) != 0
            {
                return Err(fail("bind / at the sandbox root"));
            }
            set_read_only(&plan.new_root, true)?;
            // Devices stay usable (/dev/null, /dev/tty); the bind is again writable.
            if libc::mount(
                c"/dev".as_ptr(),
                plan.new_dev.as_ptr(),
                null,
                libc::MS_BIND | libc::MS_REC,
                std::ptr::null(),
            ) != 0
            {
                return Err(fail("bind /dev"));
            }
            for (dst, opts, _) in &plan.tmpfs {
                if libc::mount(
                    c"tmpfs".as_ptr(),
                    dst.as_ptr(),
                    c"tmpfs".as_ptr(),
                    libc::MS_NOSUID | libc::MS_NODEV,
                    opts.as_ptr().cast(),
                ) != 0
                {
                    return Err(fail("tmpfs over a hidden directory"));
                }
            }
            if let Some((mkdirs, dst, opts)) = &plan.overlay {
                for d in mkdirs {
                    libc::mkdir(d.as_ptr(), 0o755);
                }
                if libc::mount(
                    c"overlay".as_ptr(),
                    dst.as_ptr(),
                    c"overlay".as_ptr(),
                    libc::MS_NOSUID,
                    opts.as_ptr().cast(),
                ) != 0
                {
                    return Err(fail("overlay over the scratch copy"));
                }
            }
            for b in &plan.binds {
                for d in &b.mkdirs {
                    libc::mkdir(d.as_ptr(), 0o755);
                }
                if libc::mount(
                    b.src.as_ptr(),
                    b.dst.as_ptr(),
                    null,
                    libc::MS_BIND | libc::MS_REC,
                    std::ptr::null(),
                ) != 0
                {
                    return Err(fail(if b.read_only {
                        "bind a read-only directory"
                    } else {
                        "bind a writable directory"
                    }));
                }
                if b.read_only {
                    set_read_only(&b.dst, true)?;
                }
            }
            for (dst, _, writable) in &plan.tmpfs {
                if !writable {
                    set_read_only(dst, false)?;
                }
            }
            if libc::mount(
                c"proc".as_ptr(),
                plan.new_proc.as_ptr(),
                c"proc".as_ptr(),
                libc::MS_NOSUID | libc::MS_NODEV | libc::MS_NOEXEC,
                std::ptr::null(),
            ) != 0
            {
                return Err(fail("mount /proc"));
            }
            if libc::chdir(r) != 0 {
                return Err(fail("chdir to the sandbox root"));
            }
            if libc::syscall(libc::SYS_pivot_root, c".".as_ptr(), c".".as_ptr()) != 0 {
                return Err(fail("pivot_root"));
            }
            if libc::umount2(c".".as_ptr(), libc::MNT_DETACH) != 0 {
                return Err(fail("detach the old root"));
            }
            if libc::chdir(plan.cwd.as_ptr()) != 0 {
                return Err(fail("chdir to the working directory"));
            }
            let host = b"codeforge-sandbox";
            libc::sethostname(host.as_ptr().cast(), host.len());
        }
        Ok(())
    }

    unsafe fn landlock(plan: &ChildPlan) -> Result<(), Failure> {
        let abi = plan.ll_abi;
        if abi < 1 {
            return Ok(());
        }
        let all = fs_rights(abi);
        let attr = RulesetAttr {
            handled_access_fs: all,
            handled_access_net: if abi >= 4 && !plan.network { 0b11 } else { 0 },
            // Signals and abstract unix sockets stay inside the sandbox.
            scoped: if abi >= 6 { 0b11 } else { 0 },
        };
        let size = match abi {
            1..=3 => 8,
            4 | 5 => 16,
            _ => 24,
        };
        unsafe {
            let ruleset = libc::syscall(
                libc::SYS_landlock_create_ruleset,
                &attr as *const RulesetAttr,
                size as usize,
                0u32,
            );
            if ruleset < 0 {
                return Err(fail("landlock_create_ruleset"));
            }
            let ruleset = ruleset as i32;
            let read = FS_EXECUTE | FS_READ_FILE | FS_READ_DIR;
            let dev = read
                | FS_WRITE_FILE
                | if abi >= 3 { FS_TRUNCATE } else { 0 }
                | if abi >= 5 { FS_IOCTL_DEV } else { 0 };
            let rules = plan
                .ll_read
                .iter()
                .map(|p| (p.as_c_str(), read))
                .chain(plan.ll_write.iter().map(|p| (p.as_c_str(), all)))
                .chain(std::iter::once((c"/dev", dev)));
            for (path, access) in rules {
                let fd = libc::open(path.as_ptr(), libc::O_PATH | libc::O_CLOEXEC);
                if fd < 0 {
                    continue;
                }
                let mut st: libc::stat = std::mem::zeroed();
                let is_dir =
                    libc::fstat(fd, &mut st) == 0 && (st.st_mode & libc::S_IFMT) == libc::S_IFDIR;
                // A file rule may carry only file rights.
                let file_rights =
                    FS_EXECUTE | FS_WRITE_FILE | FS_READ_FILE | FS_TRUNCATE | FS_IOCTL_DEV;
                let rule = PathBeneath {
                    allowed_access: if is_dir { access } else { access & file_rights },
                    parent_fd: fd,
                };
                let r = libc::syscall(
                    libc::SYS_landlock_add_rule,
                    ruleset,
                    LANDLOCK_RULE_PATH_BENEATH,
                    &rule as *const PathBeneath,
                    0u32,
                );
                let e = errno();
                libc::close(fd);
                if r != 0 {
                    libc::close(ruleset);
                    return Err(Failure {
                        step: "landlock_add_rule",
                        errno: e,
                    });
                }
            }
            let r = libc::syscall(libc::SYS_landlock_restrict_self, ruleset, 0u32);
            let e = errno();
            libc::close(ruleset);
            if r != 0 {
                return Err(Failure {
                    step: "landlock_restrict_self",
                    errno: e,
                });
            }
        }
        Ok(())
    }

    #[repr(C)]
    struct CapHeader {
        version: u32,
        pid: i32,
    }
    #[repr(C)]
    struct CapData {
        effective: u32,
        permitted: u32,
        inheritable: u32,
    }

    /// No capabilities now or after exec, even for uid 0 inside (securebits: no root magic).
    unsafe fn drop_capabilities() -> Result<(), Failure> {
        unsafe {
            // NOROOT, NO_SETUID_FIXUP, KEEP_CAPS_LOCKED, NO_CAP_AMBIENT_RAISE and their locks.
            if libc::prctl(libc::PR_SET_SECUREBITS, 0xEFu64, 0, 0, 0) != 0 && libc::getuid() == 0 {
                return Err(fail("securebits"));
            }
            libc::prctl(
                libc::PR_CAP_AMBIENT,
                libc::PR_CAP_AMBIENT_CLEAR_ALL as u64,
                0,
                0,
                0,
            );
            for cap in 0..64u64 {
                libc::prctl(libc::PR_CAPBSET_DROP, cap, 0, 0, 0);
            }
            let hdr = CapHeader {
                version: 0x2008_0522,
                pid: 0,
            };
            let data = [
                CapData {
                    effective: 0,
                    permitted: 0,
                    inheritable: 0,
                },
                CapData {
                    effective: 0,
                    permitted: 0,
                    inheritable: 0,
                },
            ];
            if libc::syscall(libc::SYS_capset, &hdr as *const CapHeader, data.as_ptr()) != 0 {
                return Err(fail("capset"));
            }
        }
        Ok(())
    }

    pub(super) unsafe fn confine(plan: &ChildPlan) -> Result<(), Failure> {
        unsafe {
            if plan.level == Level::Full {
                mounts(plan)?;
            }
            for &(res, value) in &plan.rlimits {
                let lim = libc::rlimit {
                    rlim_cur: value,
                    rlim_max: value,
                };
                if libc::setrlimit(res as _, &lim) != 0 {
                    return Err(fail("setrlimit"));
                }
            }
            if libc::prctl(libc::PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) != 0 {
                return Err(fail("no_new_privs"));
            }
            if plan.level == Level::Full {
                drop_capabilities()?;
            }
            if plan.level != Level::None {
                landlock(plan)?;
                let prog = SockFprog {
                    len: plan.seccomp.len() as u16,
                    filter: plan.seccomp.as_ptr(),
                };
                if libc::prctl(
                    libc::PR_SET_SECCOMP,
                    libc::SECCOMP_MODE_FILTER as u64,
                    &prog as *const SockFprog as u64,
                    0,
                    0,
                ) != 0
                {
                    return Err(fail("seccomp"));
                }
            }
        }
        Ok(())
    }
}

#[cfg(all(test, target_os = "linux"))]
mod tests {
    use super::*;

    /// CI runs the sandbox tests as a normal user with `CODEFORGE_EXPECT_SANDBOX=full`: there the
    /// other tests must not pass by finding no sandbox at all.
    #[test]
    fn the_machine_gives_the_isolation_ci_expects() {
        if let Ok(want) = std::env::var("CODEFORGE_EXPECT_SANDBOX") {
            let s = support();
            assert_eq!(s.level.as_str(), want, "{s:?}");
        }
    }

    #[test]
    fn secret_looking_variables_are_never_allowed() {
        for n in [
            "GITHUB_TOKEN",
            "OPENAI_API_KEY",
            "AWS_PROFILE",
            "DB_PASSWORD",
            "MY_SECRET",
            "SSH_AUTH_SOCK",
        ] {
            assert!(env_secret_name(n), "{n}");
            assert!(!env_allowed(n), "{n}");
        }
        for n in ["PATH", "LANG", "LC_ALL", "JAVA_HOME"] {
            assert!(env_allowed(n), "{n}");
        }
        assert!(
            !env_allowed("HOME"),
            "HOME is set by the caller, never inherited"
        );
    }

    #[test]
    fn read_allowlist_skips_hidden_subtrees_and_keeps_their_siblings() {
        let dir = tempfile::tempdir().unwrap();
        let root = canon(dir.path());
        for d in ["a/keep", "a/hide", "b"] {
            std::fs::create_dir_all(root.join(d)).unwrap();
        }
        let hidden = vec![root.join("a/hide")];
        let list = read_allowlist(&hidden, &[]);
        assert!(list.contains(&root.join("a/keep")), "{list:?}");
        assert!(list.contains(&root.join("b")), "{list:?}");
        assert!(
            !list.iter().any(|p| root.join("a/hide").starts_with(p)),
            "{list:?}"
        );
    }
}
