//! Builds `tests/c/mia_test.c` with the system C compiler against the cdylib that cargo built
//! for this package, under AddressSanitizer and UBSan when the compiler has them, and runs it.

#![allow(clippy::expect_used, clippy::unwrap_used, clippy::panic)]

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

/// The cdylib of this package. Cargo builds every crate type of the library before it runs
/// the package's integration tests: into `target/<profile>/deps`, beside this test binary
/// (`cargo build` also copies it up to `target/<profile>`).
fn cdylib() -> PathBuf {
    let exe = std::env::current_exe().expect("the test binary's path");
    let deps = exe.parent().expect("the test binary's folder");
    let name = format!(
        "{}mia_ffi{}",
        std::env::consts::DLL_PREFIX,
        std::env::consts::DLL_SUFFIX
    );
    let candidates = [Some(deps), deps.parent()];
    candidates
        .iter()
        .flatten()
        .map(|dir| dir.join(&name))
        .find(|path| path.is_file())
        .unwrap_or_else(|| {
            panic!(
                "{name} is neither in {} nor in its parent: cargo should have built the cdylib",
                deps.display()
            )
        })
}

fn compiler() -> String {
    std::env::var("CC").unwrap_or_else(|_| "cc".into())
}

fn show(output: &Output) -> String {
    format!(
        "status: {}\n--- stdout\n{}\n--- stderr\n{}",
        output.status,
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    )
}

/// Whether `cc` can build and run a program with these sanitizers on this machine (the
/// runtime libraries are a separate package on some systems).
fn sanitizers_work(dir: &Path, flags: &[&str]) -> bool {
    let source = dir.join("probe.c");
    let binary = dir.join("probe");
    std::fs::write(&source, "int main(void) { return 0; }\n").expect("write the probe");
    let built = Command::new(compiler())
        .args(flags)
        .arg(&source)
        .arg("-o")
        .arg(&binary)
        .output();
    matches!(built, Ok(o) if o.status.success())
        && matches!(Command::new(&binary).output(), Ok(o) if o.status.success())
}

#[test]
fn the_c_program_passes_under_the_sanitizers() {
    let crate_dir = Path::new(env!("CARGO_MANIFEST_DIR"));
    let library = cdylib();
    let library_dir = library.parent().expect("the library's folder");
    let scratch = tempfile::tempdir().expect("a scratch folder");

    let version = Command::new(compiler()).arg("--version").output();
    let version = version.unwrap_or_else(|e| {
        panic!(
            "the C compiler `{}` cannot run ({e}); install gcc or set CC",
            compiler()
        )
    });
    let first_line = String::from_utf8_lossy(&version.stdout)
        .lines()
        .next()
        .unwrap_or_default()
        .to_owned();

    let sanitizers = [
        "-fsanitize=address,undefined",
        "-fno-sanitize-recover=undefined",
        "-fno-omit-frame-pointer",
    ];
    let sanitized = sanitizers_work(scratch.path(), &sanitizers);
    if sanitized {
        eprintln!("c_abi: {first_line}, with AddressSanitizer and UBSan");
    } else {
        eprintln!(
            "c_abi: NOTE: {first_line} cannot build with -fsanitize=address,undefined here \
             (libasan/libubsan missing?); building the C test without sanitizers"
        );
    }

    let binary = scratch.path().join("mia_test");
    let mut cc = Command::new(compiler());
    cc.args(["-std=c11", "-g", "-O1", "-Wall", "-Wextra", "-Werror"]);
    if sanitized {
        cc.args(sanitizers);
    }
    cc.arg("-I")
        .arg(crate_dir.join("include"))
        .arg(crate_dir.join("tests/c/mia_test.c"))
        .arg("-o")
        .arg(&binary)
        .arg("-L")
        .arg(library_dir)
        .arg("-lmia_ffi")
        .arg(format!("-Wl,-rpath,{}", library_dir.display()))
        .arg("-lpthread");
    let built = cc.output().expect("run the C compiler");
    assert!(
        built.status.success(),
        "the C test does not compile:\n{}",
        show(&built)
    );

    let run = Command::new(&binary)
        .arg(scratch.path())
        .env("ASAN_OPTIONS", "detect_leaks=1:halt_on_error=1")
        .env("UBSAN_OPTIONS", "print_stacktrace=1:halt_on_error=1")
        .output()
        .expect("run the C test");
    let report = show(&run);
    eprintln!("{report}");
    assert!(run.status.success(), "the C test failed:\n{report}");
    let stdout = String::from_utf8_lossy(&run.stdout);
    let summary = stdout
        .lines()
        .find(|l| l.ends_with(" failed"))
        .unwrap_or_default();
    let passed: u32 = summary
        .split(' ')
        .next()
        .and_then(|n| n.parse().ok())
        .unwrap_or(0);
    assert!(
        summary.ends_with(", 0 failed") && passed > 100,
        "the C test printed no clean summary: {summary:?}"
    );
}
