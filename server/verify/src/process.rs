//! Runs one test command as untrusted code: its own process group and, where the machine allows
//! it, its own pid namespace (killed as a whole on timeout, on drop — i.e. cancellation — and when
//! the server dies), `$HOME` pointed into the scratch copy,
//! and, where the machine allows it (root or a user namespace), no network and the user's
//! workspace mounted read-only for the child. Nothing here decides what to run.

use std::ffi::CString;
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::time::{Duration, Instant};

use tokio::io::AsyncReadExt;

/// What a run is allowed to touch.
#[derive(Debug, Clone)]
pub struct Isolation {
    /// Directories made read-only for the child (the user's workspace).
    pub read_only: Vec<PathBuf>,
    /// Cut the child off the network (a new, empty network namespace).
    pub no_network: bool,
}

/// One command to run.
#[derive(Debug, Clone)]
pub struct Job {
    pub program: String,
    pub args: Vec<String>,
    pub cwd: PathBuf,
    pub env: Vec<(String, String)>,
    pub timeout: Duration,
    /// Bytes of stdout+stderr kept (the tail).
    pub max_output: usize,
}

#[derive(Debug, Clone, PartialEq, serde::Serialize)]
pub struct JobOutput {
    /// `None` when killed (timeout) or ended by a signal.
    pub exit_code: Option<i32>,
    pub timed_out: bool,
    /// stdout then stderr, each cut to its tail.
    pub output: String,
    pub elapsed_ms: u64,
    /// How the run was contained, e.g. `process group, no network, workspace read-only`.
    pub sandbox: String,
}

/// Kills a whole process group when dropped, until none of it is left.
struct GroupGuard {
    pgid: i32,
    armed: bool,
}

impl GroupGuard {
    fn kill(&mut self) {
        if self.pgid <= 0 {
            return;
        }
        // A fork bomb can keep spawning while the signal lands: repeat until the group is gone.
        for _ in 0..200 {
            // SAFETY: plain syscall on a process group we created.
            let r = unsafe { libc::kill(-self.pgid, libc::SIGKILL) };
            if r != 0 {
                break;
            }
            std::thread::sleep(Duration::from_millis(5));
        }
        self.armed = false;
    }
}

impl Drop for GroupGuard {
    fn drop(&mut self) {
        if self.armed {
            self.kill();
        }
    }
}

/// Whether this process may create mount/network namespaces (probed once, in a child).
fn can_isolate() -> bool {
    static CAN: std::sync::OnceLock<bool> = std::sync::OnceLock::new();
    *CAN.get_or_init(|| {
        let mut cmd = std::process::Command::new("true");
        // SAFETY: only async-signal-safe syscalls between fork and exec.
        unsafe {
            cmd.pre_exec(|| {
                if libc::unshare(libc::CLONE_NEWNS | libc::CLONE_NEWNET | libc::CLONE_NEWPID) != 0 {
                    return Err(std::io::Error::last_os_error());
                }
                Ok(())
            });
        }
        matches!(cmd.status(), Ok(s) if s.success())
    })
}

fn cstr(p: &Path) -> Option<CString> {
    CString::new(p.as_os_str().as_encoded_bytes()).ok()
}

/// Runs `job`; dropping the returned future kills the process group.
pub async fn run(job: &Job, iso: &Isolation) -> std::io::Result<JobOutput> {
    let start = Instant::now();
    let mut cmd = std::process::Command::new(&job.program);
    cmd.args(&job.args)
        .current_dir(&job.cwd)
        .envs(job.env.iter().map(|(k, v)| (k.as_str(), v.as_str())))
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .process_group(0);
    let isolate = can_isolate() && (iso.no_network || !iso.read_only.is_empty());
    let ro: Vec<CString> = if isolate {
        iso.read_only
            .iter()
            .filter(|p| p.is_dir())
            .filter_map(|p| cstr(p))
            .collect()
    } else {
        Vec::new()
    };
    let no_net = isolate && iso.no_network;
    let mut sandbox = vec!["process group"];
    if isolate {
        sandbox.push("pid namespace");
    }
    if no_net {
        sandbox.push("no network");
    }
    if !ro.is_empty() {
        sandbox.push("workspace read-only");
    }
    let parent = std::process::id() as i32;
    // SAFETY: between fork and exec only raw syscalls run; the CStrings were built before forking.
    unsafe {
        cmd.pre_exec(move || {
            // Die with the server: if it is gone, so is this run.
            libc::prctl(libc::PR_SET_PDEATHSIG, libc::SIGKILL);
            if libc::getppid() != parent {
                libc::_exit(137);
            }
            if isolate {
                let mut flags = libc::CLONE_NEWNS | libc::CLONE_NEWPID;
                if no_net {
                    flags |= libc::CLONE_NEWNET;
                }
                if libc::unshare(flags) != 0 {
                    return Err(std::io::Error::last_os_error());
                }
                let root = c"/";
                libc::mount(
                    std::ptr::null(),
                    root.as_ptr(),
                    std::ptr::null(),
                    libc::MS_REC | libc::MS_PRIVATE,
                    std::ptr::null(),
                );
                for p in &ro {
                    if libc::mount(
                        p.as_ptr(),
                        p.as_ptr(),
                        std::ptr::null(),
                        libc::MS_BIND | libc::MS_REC,
                        std::ptr::null(),
                    ) != 0
                    {
                        return Err(std::io::Error::last_os_error());
                    }
                    if libc::mount(
                        std::ptr::null(),
                        p.as_ptr(),
                        std::ptr::null(),
                        libc::MS_REMOUNT | libc::MS_BIND | libc::MS_RDONLY,
                        std::ptr::null(),
                    ) != 0
                    {
                        return Err(std::io::Error::last_os_error());
                    }
                }
                // The command runs as pid 1 of a new pid namespace: when it ends or is killed,
                // the kernel kills everything it left, even processes that left the group.
                // This process stays behind only to wait for it and pass its status on.
                let pid = libc::fork();
                if pid < 0 {
                    return Err(std::io::Error::last_os_error());
                }
                if pid > 0 {
                    // Let go of every descriptor: std's exec-error pipe (held open, it would
                    // block `spawn` until the run ends) and the output pipes (EOF must come
                    // when the run ends).
                    if libc::syscall(libc::SYS_close_range, 0u32, u32::MAX, 0u32) != 0 {
                        for fd in 0..4096 {
                            libc::close(fd);
                        }
                    }
                    let mut status = 0;
                    loop {
                        let r = libc::waitpid(pid, &mut status, 0);
                        if r == pid || (r < 0 && *libc::__errno_location() != libc::EINTR) {
                            break;
                        }
                    }
                    let code = if libc::WIFEXITED(status) {
                        libc::WEXITSTATUS(status)
                    } else {
                        128 + libc::WTERMSIG(status)
                    };
                    libc::_exit(code);
                }
                libc::prctl(libc::PR_SET_PDEATHSIG, libc::SIGKILL);
            }
            Ok(())
        });
    }
    let mut child = tokio::process::Command::from(cmd)
        .kill_on_drop(true)
        .spawn()?;
    let pgid = child.id().map(|p| p as i32).unwrap_or(0);
    let mut guard = GroupGuard { pgid, armed: true };
    let mut stdout = child.stdout.take().expect("piped");
    let mut stderr = child.stderr.take().expect("piped");
    let max = job.max_output.max(1024);
    let read_out = async move {
        let mut buf = Vec::new();
        let _ = read_tail(&mut stdout, &mut buf, max).await;
        buf
    };
    let read_err = async move {
        let mut buf = Vec::new();
        let _ = read_tail(&mut stderr, &mut buf, max).await;
        buf
    };
    let waited = tokio::time::timeout(job.timeout, async {
        let (status, out, err) = tokio::join!(child.wait(), read_out, read_err);
        (status, out, err)
    })
    .await;
    let (exit_code, timed_out, out, err) = match waited {
        Ok((status, out, err)) => {
            // The leader is gone; anything it left in the group goes too.
            guard.kill();
            (status?.code(), false, out, err)
        }
        Err(_) => {
            guard.kill();
            (None, true, Vec::new(), b"(killed: timeout)".to_vec())
        }
    };
    let mut output = String::from_utf8_lossy(&out).into_owned();
    if !err.is_empty() {
        if !output.is_empty() && !output.ends_with('\n') {
            output.push('\n');
        }
        output.push_str(&String::from_utf8_lossy(&err));
    }
    Ok(JobOutput {
        exit_code,
        timed_out,
        output,
        elapsed_ms: start.elapsed().as_millis() as u64,
        sandbox: sandbox.join(", "),
    })
}

/// Reads to the end, keeping only the last `max` bytes.
async fn read_tail<R: tokio::io::AsyncRead + Unpin>(
    r: &mut R,
    buf: &mut Vec<u8>,
    max: usize,
) -> std::io::Result<()> {
    let mut chunk = [0u8; 8192];
    loop {
        let n = r.read(&mut chunk).await?;
        if n == 0 {
            return Ok(());
        }
        buf.extend_from_slice(&chunk[..n]);
        if buf.len() > 2 * max {
            let cut = buf.len() - max;
            buf.drain(..cut);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn job(script: &str, timeout_ms: u64) -> Job {
        Job {
            program: "sh".into(),
            args: vec!["-c".into(), script.into()],
            cwd: std::env::temp_dir(),
            env: vec![],
            timeout: Duration::from_millis(timeout_ms),
            max_output: 4096,
        }
    }

    fn alive(pid: i32) -> bool {
        // SAFETY: signal 0 only checks existence.
        let exists = unsafe { libc::kill(pid, 0) == 0 };
        exists
            && !std::fs::read_to_string(format!("/proc/{pid}/stat"))
                .map(|s| s.contains(") Z "))
                .unwrap_or(true)
    }

    #[tokio::test]
    async fn exit_code_and_output() {
        let iso = Isolation {
            read_only: vec![],
            no_network: false,
        };
        let o = run(&job("echo hi; echo err >&2; exit 3", 5000), &iso)
            .await
            .unwrap();
        assert_eq!(o.exit_code, Some(3));
        assert!(!o.timed_out);
        assert_eq!(o.output, "hi\nerr\n");
    }

    #[tokio::test]
    async fn timeout_kills_the_whole_group() {
        let dir = tempfile::tempdir().unwrap();
        let pidfile = dir.path().join("pid");
        let script = format!("sleep 30 & echo $! > {}; wait", pidfile.display());
        let iso = Isolation {
            read_only: vec![],
            no_network: false,
        };
        let o = run(&job(&script, 500), &iso).await.unwrap();
        assert!(o.timed_out);
        let pid: i32 = std::fs::read_to_string(&pidfile)
            .unwrap()
            .trim()
            .parse()
            .unwrap();
        std::thread::sleep(Duration::from_millis(100));
        assert!(!alive(pid), "grandchild {pid} survived the timeout");
    }

    #[tokio::test]
    async fn dropping_the_future_kills_the_group() {
        let dir = tempfile::tempdir().unwrap();
        let pidfile = dir.path().join("pid");
        let script = format!("sleep 30 & echo $! > {}; wait", pidfile.display());
        let iso = Isolation {
            read_only: vec![],
            no_network: false,
        };
        let j = job(&script, 60_000);
        let fut = run(&j, &iso);
        let _ = tokio::time::timeout(Duration::from_millis(500), fut).await;
        let pid: i32 = std::fs::read_to_string(&pidfile)
            .unwrap()
            .trim()
            .parse()
            .unwrap();
        std::thread::sleep(Duration::from_millis(100));
        assert!(!alive(pid), "grandchild {pid} survived cancellation");
    }

    #[tokio::test]
    async fn background_children_do_not_outlive_a_finished_run() {
        let dir = tempfile::tempdir().unwrap();
        let pidfile = dir.path().join("pid");
        let script = format!(
            "(sleep 30 >/dev/null 2>&1 &) ; sleep 30 >/dev/null 2>&1 & echo $! > {}",
            pidfile.display()
        );
        let iso = Isolation {
            read_only: vec![],
            no_network: false,
        };
        let o = run(&job(&script, 5000), &iso).await.unwrap();
        assert_eq!(o.exit_code, Some(0));
        let pid: i32 = std::fs::read_to_string(&pidfile)
            .unwrap()
            .trim()
            .parse()
            .unwrap();
        std::thread::sleep(Duration::from_millis(100));
        assert!(!alive(pid));
    }

    #[tokio::test]
    async fn an_isolated_endless_run_times_out() {
        let iso = Isolation {
            read_only: vec![],
            no_network: true,
        };
        let t = std::time::Instant::now();
        let o = run(&job("while :; do :; done", 500), &iso).await.unwrap();
        assert!(o.timed_out, "{o:?}");
        assert!(
            t.elapsed() < Duration::from_secs(5),
            "spawn or the wait blocked: {:?}",
            t.elapsed()
        );
    }

    #[tokio::test]
    async fn a_daemon_that_left_the_group_dies_with_the_run_where_isolation_is_possible() {
        let dir = tempfile::tempdir().unwrap();
        let pidfile = dir.path().join("pid");
        // `setsid` leaves the process group; only the pid namespace catches it.
        let script = format!(
            "setsid sh -c 'sleep 30; echo {}' >/dev/null 2>&1 & sleep 0.3",
            pidfile.display()
        );
        let iso = Isolation {
            read_only: vec![],
            no_network: true,
        };
        let o = run(&job(&script, 5000), &iso).await.unwrap();
        assert_eq!(o.exit_code, Some(0), "{o:?}");
        if !can_isolate() {
            return;
        }
        // Look for the escaped shell by its command line.
        std::thread::sleep(Duration::from_millis(200));
        let marker = pidfile.display().to_string();
        let survivors: Vec<String> = std::fs::read_dir("/proc")
            .unwrap()
            .flatten()
            .filter_map(|e| std::fs::read(e.path().join("cmdline")).ok())
            .map(|c| String::from_utf8_lossy(&c).replace('\0', " "))
            .filter(|c| c.contains(&marker))
            .collect();
        assert!(survivors.is_empty(), "escaped: {survivors:?}");
    }

    #[tokio::test]
    async fn read_only_workspace_where_the_machine_allows() {
        let dir = tempfile::tempdir().unwrap();
        let iso = Isolation {
            read_only: vec![dir.path().to_path_buf()],
            no_network: true,
        };
        let target = dir.path().join("written");
        let o = run(&job(&format!("echo x > {}", target.display()), 5000), &iso)
            .await
            .unwrap();
        if can_isolate() {
            assert!(!target.exists(), "wrote into a read-only workspace: {o:?}");
            assert!(o.sandbox.contains("read-only") && o.sandbox.contains("no network"));
        } else {
            assert_eq!(o.sandbox, "process group");
        }
    }
}
