//! The CPU this binary was built for: every x86-64 build assumes x86-64-v3 (`.cargo/config.toml`),
//! so on an older CPU it says so and exits 1 instead of dying of an illegal instruction.
//!
//! The check cannot be Rust: compiled for x86-64-v3, even a function that only reads `cpuid`
//! copies its result with AVX moves (seen: SIGILL on `vmovdqu` under `qemu-x86_64 -cpu Nehalem`),
//! and `is_x86_feature_detected!` answers "yes" for every feature the build enables. So it is a
//! few instructions of assembly that the loader runs before anything else (`.init_array`), with
//! its message written by the `write` system call.

#[cfg(all(target_arch = "x86_64", target_os = "linux"))]
const TEXT: &[u8] = b"codeforge: this CPU lacks AVX2, FMA or BMI2: this build needs an x86-64-v3 CPU (Intel Haswell, AMD Excavator or newer)\n";
#[cfg(all(target_arch = "x86_64", target_os = "linux"))]
const MESSAGE_LEN: usize = TEXT.len();
/// The message as bytes in the binary, for the assembly to hand to `write`.
#[cfg(all(target_arch = "x86_64", target_os = "linux"))]
static MESSAGE: [u8; MESSAGE_LEN] = match TEXT.first_chunk::<MESSAGE_LEN>() {
    Some(m) => *m,
    None => unreachable!(),
};

// cpuid leaf 1, ecx: fma (12), movbe (22), popcnt (23), avx (28), f16c (29);
// leaf 7, ebx: bmi1 (3), avx2 (5), bmi2 (8).
#[cfg(all(target_arch = "x86_64", target_os = "linux"))]
std::arch::global_asm!(
    ".pushsection .init_array,\"aw\"",
    ".balign 8",
    ".quad 2f",
    ".popsection",
    ".pushsection .text.codeforge_cpu_check,\"ax\",@progbits",
    "2:",
    "push rbx",
    "xor eax, eax",
    "cpuid",
    "cmp eax, 7",
    "jb 3f",
    "mov eax, 1",
    "xor ecx, ecx",
    "cpuid",
    "and ecx, 0x30C01000",
    "cmp ecx, 0x30C01000",
    "jne 3f",
    "mov eax, 7",
    "xor ecx, ecx",
    "cpuid",
    "and ebx, 0x128",
    "cmp ebx, 0x128",
    "jne 3f",
    "pop rbx",
    "ret",
    "3:",
    "mov eax, 1",
    "mov edi, 2",
    "lea rsi, [rip + {msg}]",
    "mov edx, {len}",
    "syscall",
    "mov eax, 231",
    "mov edi, 1",
    "syscall",
    "ud2",
    ".popsection",
    msg = sym MESSAGE,
    len = const MESSAGE_LEN,
);
